//! Rendering and serialization of the demo report.

use super::*;

fn sample() -> DemoReport {
    let mut plan = BTreeMap::new();
    for (k, v) in [
        ("bottom.0", "f32"),
        ("table.10", "fused4"),
        ("table.2", "fused8"),
        ("top.0", "int8-dyn"),
    ] {
        plan.insert(k.to_string(), v.to_string());
    }
    DemoReport {
        quantrec_version: "0.1.0".into(),
        isa: "avx2".into(),
        quick: true,
        data: DemoData::File {
            path: "x.tsv".into(),
            rows: 1000,
            holdout_rows: 200,
            table_rows: 20_000,
        },
        train_rows: 800,
        train_seconds: 1.5,
        teacher_ne: None,
        budget_ne_pct: 0.02,
        ne_f32: 0.9,
        ne_quantized: 0.9001,
        delta_ne_pct: 0.011,
        auc_f32: 0.75,
        auc_quantized: 0.7499,
        delta_auc: -0.0001,
        calibration_f32: None,
        calibration_quantized: 1.01,
        metrics_f32: Metrics {
            count: 200,
            ctr: Some(0.25),
            log_loss: Some(0.5),
            ne: Some(0.9),
            auc: Some(0.75),
            calibration: None,
        },
        bytes_f32: 4000,
        bytes_quantized: 1000,
        size_fraction: 0.25,
        plan,
        search: None,
        throughput: vec![ThroughputRow {
            model: "f32".into(),
            batch: 64,
            threads: 1,
            samples_per_second: 12345.6,
            latency_p50_us: 5.18,
        }],
        seconds: 10.0,
        latency_optimal: LatencyOptimal {
            plan: "bottom f32 | top f32 | tables 26×fused4".into(),
            same_as_size_optimal: true,
            delta_ne_pct: 0.011,
            bytes: 1000,
            how: "least predicted latency".into(),
            seconds: 0.1,
        },
        refresh: None,
        search_markdown: "SEARCH\n".into(),
        sections: Vec::new(),
        extra: BTreeMap::new(),
    }
}

#[test]
fn markdown_lists_units_in_natural_order() {
    let md = sample().to_string();
    let at = |s: &str| {
        md.find(s)
            .unwrap_or_else(|| panic!("{s} missing from\n{md}"))
    };
    assert!(at("| bottom.0 |") < at("| top.0 |"));
    assert!(at("| top.0 |") < at("| table.2 |"));
    assert!(at("| table.2 |") < at("| table.10 |"));
    assert!(md.starts_with("# quantrec demo report\n\nMachine: avx2\n\n"));
    assert!(md.contains(
        "Data: `{\"holdout_rows\":200,\"kind\":\"file\",\"path\":\"x.tsv\",\"rows\":1000,\"table_rows\":20000}`"
    ));
    assert!(
        md.contains("| f32 | 0.90000 | 0.75000 | NaN | 4000 |"),
        "{md}"
    );
    assert!(md.contains("| f32 | 64 | 1 | 12346 | 5.2 |"), "{md}");
    assert!(md.contains("the same plan, so it is not measured twice"));
    assert!(md.ends_with("## Precision search\n\nSEARCH\n"));
    assert!(!md.contains("Teacher NE") && !md.contains("## Refresh"));
}

#[test]
fn later_sections_come_before_the_search() {
    let mut r = sample();
    r.sections.push(ReportSection {
        markdown: "## Serving\n\nfast\n\n".into(),
    });
    let md = r.to_string();
    assert!(md.find("## Serving").unwrap() < md.find("## Precision search").unwrap());
}

#[test]
fn json_keeps_the_report_field_names_and_sorted_keys() {
    let mut r = sample();
    r.extra
        .insert("online".into(), serde_json::json!({"qps": 1}));
    let text = r.to_json_pretty().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data"]["kind"], "file");
    assert_eq!(v["metrics_f32"]["count"], 200);
    assert!(v["metrics_f32"]["calibration"].is_null());
    assert!(v["refresh"].is_null() && v["search"].is_null());
    assert_eq!(v["throughput"][0]["samples_per_second"], 12345.6);
    assert_eq!(v["latency_optimal"]["same_as_size_optimal"], true);
    assert_eq!(v["plan"]["table.10"], "fused4");
    assert_eq!(v["online"]["qps"], 1);
    assert!(v.get("search_markdown").is_none() && v.get("sections").is_none());
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(text.find("\"auc_f32\"").unwrap() < text.find("\"bytes_f32\"").unwrap());
}

#[test]
fn plan_units_names_every_unit() {
    let config = quantrec_train::suggested_config(13, &[10, 20], 8);
    let units = plan_units(&quantrec_model::Plan::f32(&config));
    assert_eq!(units["table.1"], "f32");
    assert!(units.contains_key("bottom.0") && units.contains_key("top.0"));
}
