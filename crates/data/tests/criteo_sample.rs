//! The Criteo reader on the real DAC sample (read in place from `shared/`), checked field by field
//! against an independent plain parse, plus gzip and format detection.

use std::io::Write;
use std::path::PathBuf;

use quantrec_data::source::{FileKind, batches, detect, read_all};
use quantrec_data::{SourceSpec, open_source, synth::criteo_table_rows};

fn sample_path() -> PathBuf {
    quantrec_testkit::shared_dir(env!("CARGO_MANIFEST_DIR"))
        .join("data/criteo-dac-sample/train.txt")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quantrec-data-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn reads_the_sample_like_an_independent_parse() {
    let rows = criteo_table_rows(50_000);
    let path = sample_path();
    assert_eq!(detect(&path).unwrap(), FileKind::Text);
    let mut src = open_source(&path, &SourceSpec::new(rows.clone(), 1000)).unwrap();
    let mut n_batches = 0;
    let mut all = quantrec_data::Batch::default();
    for b in batches(src.as_mut()) {
        let b = b.unwrap();
        assert!(b.size <= 1000);
        n_batches += 1;
        quantrec_data::batch_ops::append(&mut all, &b).unwrap();
    }
    assert_eq!(n_batches, 10);
    assert_eq!(all.size, 10_000);
    assert_eq!(src.stats().rows, 10_000);
    assert_eq!(all.n_dense, 13);
    let labels = all.labels.as_ref().unwrap();
    assert_eq!(labels.iter().filter(|&&y| y == 1.0).count(), 2_182);

    // Oracle: split each line by hand.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut missing_dense = 0;
    let mut missing_cat = 0;
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 40);
        assert_eq!(labels[i], f[0].parse::<f32>().unwrap());
        for j in 0..13 {
            let expect = if f[1 + j].is_empty() {
                missing_dense += 1;
                0.0
            } else {
                (f[1 + j].parse::<i64>().unwrap().max(0) as f64).ln_1p() as f32
            };
            assert_eq!(all.dense[i * 13 + j], expect, "line {} I{}", i + 1, j + 1);
        }
        for t in 0..26 {
            let field = f[14 + t];
            let expect = if field.is_empty() {
                missing_cat += 1;
                0
            } else {
                (u64::from_str_radix(field, 16).unwrap() % rows[t] as u64) as i64
            };
            let s = &all.sparse[t];
            assert_eq!(s.offsets[i + 1] - s.offsets[i], 1);
            assert_eq!(s.ids[i], expect, "line {} C{}", i + 1, t + 1);
        }
    }
    assert!(missing_dense > 0 && missing_cat > 0);
    // Spot checks on line 1: "0 1 1 5 0 1382 4 15 2 181 1 2 <empty> 2 68fd1e64 ...".
    assert_eq!(all.dense[0], std::f32::consts::LN_2);
    assert_eq!(all.dense[3], 0.0);
    assert_eq!(all.dense[4], (1383f64).ln() as f32);
    assert_eq!(all.dense[11], 0.0);
    assert_eq!(all.sparse[0].ids[0], (0x68fd1e64u64 % 1460) as i64);
}

#[test]
fn gzip_reads_the_same_batches() {
    let dir = temp_dir("gzip");
    let gz = dir.join("sample.txt.gz");
    let raw = std::fs::read(sample_path()).unwrap();
    // Two gzip members back to back (like `cat a.gz b.gz`), split mid-file.
    let mut out = std::fs::File::create(&gz).unwrap();
    for part in [&raw[..raw.len() / 3], &raw[raw.len() / 3..]] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        out.write_all(&enc.finish().unwrap()).unwrap();
    }
    drop(out);
    assert_eq!(detect(&gz).unwrap(), FileKind::GzipText);
    let spec = SourceSpec::new(criteo_table_rows(10_000), 777);
    let plain = read_all(open_source(&sample_path(), &spec).unwrap().as_mut()).unwrap();
    let zipped = read_all(open_source(&gz, &spec).unwrap().as_mut()).unwrap();
    assert_eq!(plain.size, 10_000);
    assert_eq!(plain, zipped);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn malformed_lines_in_a_file_report_file_and_line() {
    let dir = temp_dir("malformed");
    let path = dir.join("bad.tsv");
    let text = std::fs::read_to_string(sample_path()).unwrap();
    let mut lines: Vec<String> = text.lines().take(50).map(String::from).collect();
    lines[6] = lines[6].replacen('\t', "\tabc", 2); // a non-numeric count on line 7
    lines[20] = lines[20]
        .split('\t')
        .take(30)
        .collect::<Vec<_>>()
        .join("\t"); // 30 fields, line 21
    lines[33] = format!("x{}", &lines[33][1..]); // bad label on line 34
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let spec = SourceSpec::new(criteo_table_rows(1000), 8);
    let err = read_all(open_source(&path, &spec).unwrap().as_mut()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bad.tsv:7:") && msg.contains("column 2 (I1)"),
        "{msg}"
    );

    let spec = SourceSpec {
        skip_bad_lines: true,
        ..spec
    };
    let mut src = open_source(&path, &spec).unwrap();
    let all = read_all(src.as_mut()).unwrap();
    assert_eq!(all.size, 47);
    assert_eq!(src.stats().skipped_lines, 3);
    let ex = &src.stats().examples;
    assert!(ex[0].contains(":7:"), "{ex:?}");
    assert!(
        ex[1].contains(":21:") && ex[1].contains("expected 40 fields, found 30"),
        "{ex:?}"
    );
    assert!(ex[2].contains(":34:") && ex[2].contains("label"), "{ex:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
