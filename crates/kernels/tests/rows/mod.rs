//! Shared by the table-format test files: rows of the shapes real tables and adversarial inputs
//! take, and tables of them.

use quantrec_kernels::rng::Rng;

/// One row of a given kind: the shapes real tables and adversarial inputs take.
pub fn row(rng: &mut Rng, kind: u64, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = match kind {
        0 => rng.normal_vec(dim, 0.05),
        1 => (0..dim)
            .map(|_| (rng.normal() * rng.normal()) as f32)
            .collect(),
        2 => vec![0.37; dim],
        3 => vec![0.0; dim],
        4 => (0..dim).map(|_| rng.uniform_f32(-1.8, -1.05)).collect(),
        // Narrower than f32 resolution at its magnitude: PyTorch's search never ends on these.
        5 => (0..dim)
            .map(|_| 1.0 + 1e-6 * rng.uniform_f32(0.0, 1.0))
            .collect(),
        6 => (0..dim).map(|_| rng.uniform_f32(-1300.0, 2300.0)).collect(),
        7 => (0..dim)
            .map(|_| 1e-7 * rng.uniform_f32(-1.0, 1.0))
            .collect(),
        8 => (0..dim)
            .map(|_| -3.0 + 1e-5 * rng.uniform_f32(0.0, 1.0))
            .collect(),
        _ => rng.normal_vec(dim, 1.0),
    };
    if kind == 9 && dim > 0 {
        let i = rng.below(dim as u64) as usize;
        v[i] = 50.0;
    }
    v
}

/// `rows` rows of `dim` values cycling through the ten kinds of [`row`].
pub fn table(seed: u64, rows: usize, dim: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..rows)
        .flat_map(|r| row(&mut rng, r as u64 % 10, dim))
        .collect()
}
