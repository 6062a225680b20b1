//! Writes the seed corpus of every fuzz target into `corpus/<target>/` (run from `fuzz/`):
//! tiny valid inputs made with quantrec's own writers, so the fuzzer starts from well-formed files.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use quantrec_data::write_batch_file;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::artifact::{Provenance, to_bytes};
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode, TableConfig};
use quantrec_model::export::export_state_dict;
use quantrec_model::plan::{ActivationPlan, LayerPrecision};
use quantrec_model::{ModelConfig, Plan, Weights};

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

fn config(interaction: Interaction, naming: Naming) -> ModelConfig {
    ModelConfig {
        dense_features: 3,
        bottom_mlp: vec![5, 4],
        tables: vec![
            TableConfig {
                rows: 5,
                dim: 4,
                pooling: PoolingMode::Sum,
            },
            TableConfig {
                rows: 3,
                dim: 4,
                pooling: PoolingMode::Mean,
            },
        ],
        interaction,
        top_mlp: vec![3, 1],
        naming,
    }
}

fn criteo_line(i: usize) -> String {
    let mut f = vec![(i % 2).to_string()];
    f.extend((0..13).map(|j| {
        if (i + j) % 5 == 0 {
            String::new()
        } else {
            (i * j).to_string()
        }
    }));
    f.extend((0..26).map(|j| {
        if (i + j) % 7 == 0 {
            String::new()
        } else {
            format!("{:08x}", 0x68fd1e64u64 * (i as u64 + 1) + j as u64)
        }
    }));
    f.join("\t")
}

fn text_seeds() {
    let criteo: String = (0..3).map(|i| criteo_line(i) + "\n").collect();
    put(
        "text_reader",
        "criteo",
        &[&[0u8][..], criteo.as_bytes()].concat(),
    );
    put(
        "text_reader",
        "criteo_skip",
        &[&[0x40u8 | 0x08][..], criteo.as_bytes(), b"bad\n"].concat(),
    );
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(criteo.as_bytes()).expect("gzip");
    put(
        "text_reader",
        "criteo_gz",
        &[&[0x80u8][..], &gz.finish().expect("gzip")].concat(),
    );
    let schema = br#"{"delimiter": ",", "header": true, "columns": [
 {"name": "click", "role": "label"}, {"role": "dense", "transform": "none"}, {"role": "dense"},
 {"role": "sparse", "kind": "ids"}, {"role": "sparse", "kind": "hash", "separator": "|"},
 {"role": "sparse", "kind": "hex"}, {"role": "ignore"}]}"#;
    let text = b"click,a,b,u,tags,h,ts\n1,0.5,3,0,x|y|z,ff,9\n0,-1.5,,2,,0a,9\n";
    put(
        "text_reader",
        "schema",
        &[&[0x01u8 | 0x04][..], schema, b"\0", text].concat(),
    );
    let schema2 =
        br#"{"columns": [{"role": "dense"}, {"role": "sparse", "kind": "ids", "separator": " "}]}"#;
    put(
        "text_reader",
        "schema_nolabel",
        &[&[0x01u8 | 0x06][..], schema2, b"\0", b"7\t1 2 0\n\n3\t\n"].concat(),
    );
}

fn batch_seeds() {
    let tmp =
        std::env::temp_dir().join(format!("quantrec-seed-{}.safetensors", std::process::id()));
    let batch = quantrec_fuzz::batch_for(&config(Interaction::Cat, Naming::Dlrm), 3);
    let mut labelled = batch.clone();
    labelled.labels = Some(vec![1.0, 0.0, 1.0]);
    labelled.sparse[1].weights = Some(vec![0.5, 1.0, 2.0]);
    for (name, b) in [("plain", &batch), ("labelled", &labelled)] {
        write_batch_file(&tmp, b).expect("write a batch file");
        put(
            "batch_file",
            name,
            &std::fs::read(&tmp).expect("read it back"),
        );
    }
    let _ = std::fs::remove_file(&tmp);
}

fn model_seeds() {
    let dot = |order| Interaction::Dot {
        order,
        self_interaction: false,
    };
    let dcn = Interaction::Dcn { layers: 2, rank: 2 };
    let cases = [
        ("dlrm_dot", config(dot(DotOrder::LowerByRow), Naming::Dlrm)),
        ("dlrm_cat", config(Interaction::Cat, Naming::Dlrm)),
        (
            "torchrec_dot",
            config(dot(DotOrder::UpperByRow), Naming::TorchRec),
        ),
        ("torchrec_dcn", config(dcn, Naming::TorchRec)),
    ];
    let int8 = LayerPrecision::Int8 {
        per_channel: true,
        activations: ActivationPlan::Dynamic,
    };
    let int8_static = LayerPrecision::Int8 {
        per_channel: false,
        activations: ActivationPlan::Static {
            scale: 0.05,
            zero_point: 3,
        },
    };
    let plans = [
        ("f32", LayerPrecision::F32, TableFormat::F32),
        ("f16_fused8", LayerPrecision::F16, TableFormat::Fused8),
        ("bf16_fused4", LayerPrecision::Bf16, TableFormat::Fused4),
        ("int8_fused2", int8, TableFormat::Fused2),
        ("int8s_f16", int8_static, TableFormat::F16),
    ];
    for (i, (name, cfg)) in cases.iter().enumerate() {
        let w = Weights::random(cfg, 7 + i as u64);
        let sd = export_state_dict(cfg, &w, cfg.naming).expect("export a state dict");
        put(
            "state_dict_import",
            name,
            &sd.to_bytes().expect("serialize a state dict"),
        );
        for (pname, layer, table) in plans {
            let plan = Plan::uniform(cfg, layer, table);
            let bytes =
                to_bytes(cfg, &w, &plan, &Provenance::default()).expect("write an artifact");
            put("artifact_load", &format!("{name}_{pname}"), &bytes);
        }
    }
}

fn main() {
    text_seeds();
    batch_seeds();
    model_seeds();
    println!("seeds written under corpus/");
}
