//! The one kernel registry: every kernel family, its implementations, and how an ops table is
//! chosen for an ISA level.
//!
//! In the spirit of tract's ops table, each family is a type implementing [`KernelFamily`]: a
//! name, an ops table type (the family's function pointers, what its hot path calls), and the list
//! of its [`Implementation`]s, **scalar oracle first, richest ISA last**. An implementation names
//! the lowest [`Isa`] level at which it may be chosen and, where the level alone does not say it,
//! a run-time probe (AVX-VNNI, AVX512-BF16, AMX tile permission). Selection is one rule for every
//! family: for a level `L`, the last implementation whose level is at most `L` and whose probe
//! passes. [`KernelFamily::active`] applies it to [`Isa::active`] (so `QUANTREC_ISA` caps every
//! family the same way) and caches the result; [`KernelFamily::for_level`] applies it to any level
//! the CPU has; [`KernelFamily::get`] builds one named implementation (tests and benchmarks run
//! each). Ops tables are built once per implementation and live for the whole process.
//!
//! [`FAMILIES`] enumerates every family with the implementations this CPU runs and its self-check;
//! [`crate::selfcheck::run_all`] and the benchmark harness iterate it, so a family registered here
//! cannot be left out of either.

use std::sync::OnceLock;

use crate::selfcheck::CheckResult;
use crate::{Isa, KernelError, Result};

/// One implementation of a kernel family.
#[derive(Clone, Copy, Debug)]
pub struct Implementation {
    /// Short name for reports and test messages (`scalar`, `avx2`, `avx512`, `amx`, ...).
    pub name: &'static str,
    /// The lowest ISA level at which this implementation may be selected.
    pub isa: Isa,
    /// Whether this CPU (and OS) can run it beyond `isa <= Isa::detected()`; [`always`] for most.
    pub probe: fn() -> bool,
}

impl Implementation {
    /// An implementation that needs nothing beyond its level.
    pub const fn at(name: &'static str, isa: Isa) -> Implementation {
        Implementation {
            name,
            isa,
            probe: always,
        }
    }

    /// An implementation that also needs `probe` to pass.
    pub const fn probed(name: &'static str, isa: Isa, probe: fn() -> bool) -> Implementation {
        Implementation { name, isa, probe }
    }

    /// True when this CPU can run it.
    pub fn runnable(&self) -> bool {
        self.isa <= Isa::detected() && (self.probe)()
    }
}

impl std::fmt::Display for Implementation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The implementations of a family with a scalar oracle and one width-generic SIMD body (see
/// `simd.rs`) at AVX2 and AVX-512: index 0, 1 and 2.
pub const SCALAR_AVX2_AVX512: &[Implementation] = &[
    Implementation::at("scalar", Isa::Scalar),
    Implementation::at("avx2", Isa::Avx2),
    Implementation::at("avx512", Isa::Avx512),
];

/// The probe of implementations that need nothing beyond their level.
pub fn always() -> bool {
    true
}

/// Most implementations a family may register.
pub const MAX_IMPLEMENTATIONS: usize = 8;

/// Where a family keeps its built ops tables (one per implementation) and its active choice.
/// Declare one `static` per family with [`FamilyCache::new`].
pub struct FamilyCache<Ops> {
    built: [OnceLock<Ops>; MAX_IMPLEMENTATIONS],
    active: OnceLock<usize>,
}

impl<Ops> FamilyCache<Ops> {
    /// An empty cache (for a `static`).
    pub const fn new() -> Self {
        FamilyCache {
            built: [const { OnceLock::new() }; MAX_IMPLEMENTATIONS],
            active: OnceLock::new(),
        }
    }
}

impl<Ops> Default for FamilyCache<Ops> {
    fn default() -> Self {
        Self::new()
    }
}

/// A kernel family: an ops table type and its implementations, scalar oracle first, richest last.
pub trait KernelFamily: 'static {
    /// The family's name in reports (`interaction`, `gemm_dense`, `embedding_bag`, ...).
    const NAME: &'static str;
    /// The table of function pointers (or kernels) the family's entry points call.
    type Ops: Send + Sync + 'static;
    /// Every implementation, scalar oracle first, ordered by level, richest last.
    const IMPLEMENTATIONS: &'static [Implementation];

    /// Builds the ops table of implementation `index` of [`KernelFamily::IMPLEMENTATIONS`]. Only
    /// called for implementations this CPU runs.
    fn build(index: usize) -> Result<Self::Ops>;

    /// The family's cache (a `static` declared with [`FamilyCache::new`]).
    fn cache() -> &'static FamilyCache<Self::Ops>;

    /// The implementations this CPU runs, scalar first.
    fn available() -> impl Iterator<Item = (usize, &'static Implementation)> {
        Self::IMPLEMENTATIONS
            .iter()
            .enumerate()
            .filter(|(_, imp)| imp.runnable())
    }

    /// The index of the implementation chosen for level `isa`: the last runnable one at or below it.
    fn index_for(isa: Isa) -> usize {
        Self::IMPLEMENTATIONS
            .iter()
            .rposition(|imp| imp.isa <= isa && imp.runnable())
            .unwrap_or(0)
    }

    /// The implementation chosen for level `isa`.
    fn implementation_for(isa: Isa) -> &'static Implementation {
        &Self::IMPLEMENTATIONS[Self::index_for(isa)]
    }

    /// The ops table of implementation `index`, built once; an error when this CPU cannot run it.
    fn get(index: usize) -> Result<&'static Self::Ops> {
        let imp = Self::IMPLEMENTATIONS
            .get(index)
            .ok_or(KernelError::UnknownImplementation {
                family: Self::NAME,
                index,
            })?;
        if !imp.runnable() {
            return Err(KernelError::IsaUnavailable {
                requested: imp.isa,
                detected: Isa::detected(),
            });
        }
        let slot = &Self::cache().built[index];
        if let Some(ops) = slot.get() {
            return Ok(ops);
        }
        let ops = Self::build(index)?;
        Ok(slot.get_or_init(|| ops))
    }

    /// The ops table for level `isa` (an error when the CPU lacks the level).
    fn for_level(isa: Isa) -> Result<&'static Self::Ops> {
        let detected = Isa::detected();
        if isa > detected {
            return Err(KernelError::IsaUnavailable {
                requested: isa,
                detected,
            });
        }
        Self::get(Self::index_for(isa))
    }

    /// The index of the implementation [`KernelFamily::active`] uses (cached).
    fn active_index() -> usize {
        *Self::cache()
            .active
            .get_or_init(|| Self::index_for(Isa::active()))
    }

    /// The ops table for [`Isa::active`] (built and chosen once). Falls back to the scalar oracle
    /// should the chosen table fail to build.
    fn active() -> &'static Self::Ops {
        Self::get(Self::active_index())
            .or_else(|_| Self::get(0))
            .expect("the scalar oracle of every family builds")
    }
}

/// One family as [`FAMILIES`] lists it: what the self-check and the benchmarks iterate.
#[derive(Clone, Copy)]
pub struct FamilyEntry {
    /// [`KernelFamily::NAME`].
    pub name: &'static str,
    /// [`KernelFamily::IMPLEMENTATIONS`].
    pub implementations: &'static [Implementation],
    /// The index of the implementation [`KernelFamily::active`] uses.
    pub active: fn() -> usize,
    /// Checks implementation `index` against the scalar oracle on fresh random data from `seed`.
    pub selfcheck: fn(usize, u64) -> Result<Vec<CheckResult>>,
}

impl FamilyEntry {
    /// The entry of family `F` with its self-check.
    pub const fn of<F: KernelFamily>(
        selfcheck: fn(usize, u64) -> Result<Vec<CheckResult>>,
    ) -> Self {
        FamilyEntry {
            name: F::NAME,
            implementations: F::IMPLEMENTATIONS,
            active: F::active_index,
            selfcheck,
        }
    }

    /// The implementations this CPU runs, with their indices, scalar first.
    pub fn available(&self) -> impl Iterator<Item = (usize, &'static Implementation)> {
        self.implementations
            .iter()
            .enumerate()
            .filter(|(_, imp)| imp.runnable())
    }
}

impl std::fmt::Debug for FamilyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyEntry")
            .field("name", &self.name)
            .field("implementations", &self.implementations)
            .finish()
    }
}

/// Every kernel family of the crate. Registering a family means adding it here (with its
/// self-check); the self-check, the benchmarks and the test suites all start from this list.
pub const FAMILIES: &[FamilyEntry] = &[
    FamilyEntry::of::<crate::formats::codes::Codes>(crate::selfcheck::codes),
    FamilyEntry::of::<crate::formats::decode::Decode>(crate::selfcheck::decode),
    FamilyEntry::of::<crate::formats::greedy::Greedy>(crate::selfcheck::greedy),
    FamilyEntry::of::<crate::embedding_bag::EmbeddingBagFamily>(crate::selfcheck::embedding_bag),
    FamilyEntry::of::<crate::gemm::DenseFamily>(crate::selfcheck::dense),
    FamilyEntry::of::<crate::gemm::int8::Int8Family>(crate::selfcheck::int8),
    FamilyEntry::of::<crate::interaction::InteractionFamily>(crate::selfcheck::interaction),
];

/// The registered family called `name`.
pub fn family(name: &str) -> Option<&'static FamilyEntry> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// `(family, implementation)` for every implementation this CPU runs, in registry order.
pub fn available() -> impl Iterator<Item = (&'static FamilyEntry, &'static Implementation)> {
    FAMILIES
        .iter()
        .flat_map(|f| f.available().map(move |(_, imp)| (f, imp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_starts_with_a_scalar_oracle_and_is_ordered_by_level() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "family names are unique");
        for f in FAMILIES {
            let imps = f.implementations;
            assert!(
                !imps.is_empty() && imps.len() <= MAX_IMPLEMENTATIONS,
                "{}",
                f.name
            );
            assert_eq!(imps[0].isa, Isa::Scalar, "{}", f.name);
            assert!(imps[0].runnable(), "{}", f.name);
            assert!(imps.windows(2).all(|w| w[0].isa <= w[1].isa), "{}", f.name);
            let active = (f.active)();
            assert!(imps[active].runnable() && imps[active].isa <= Isa::active());
        }
    }
}
