//! `QUANTREC_AMX=off` turns the AMX kernels off (the AVX512-VNNI / AVX512-BF16 ones run instead), so
//! an AMX machine can measure what a CPU without AMX does: the AMX peak loops disappear from
//! `bench kernels`. (Every int8 variant equals the scalar oracle bit for bit: the kernels' tests.)

use std::process::Command;

fn peak_lines(amx: Option<&str>) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quantrec"));
    c.args(["bench", "kernels", "--quick", "--filter", "peak_"]);
    if let Some(v) = amx {
        c.env("QUANTREC_AMX", v);
    } else {
        c.env_remove("QUANTREC_AMX");
    }
    let o = c.output().expect("run quantrec");
    assert!(
        o.status.success(),
        "bench kernels failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

#[test]
fn quantrec_amx_off_drops_the_amx_kernels() {
    let default = peak_lines(None);
    for off in ["off", "0", "FALSE"] {
        let out = peak_lines(Some(off));
        assert!(
            !out.contains("peak_int8_amx") && !out.contains("peak_bf16_amx"),
            "QUANTREC_AMX={off} still ran AMX:\n{out}"
        );
        assert!(out.contains("peak_f32_fma"), "no peak lines at all:\n{out}");
    }
    // Anything else leaves the machine's own choice alone.
    let on = peak_lines(Some("on"));
    assert_eq!(
        on.contains("peak_int8_amx"),
        default.contains("peak_int8_amx"),
        "QUANTREC_AMX=on changed the default"
    );
}
