//! The CPU a binary was built for, checked against the CPU it runs on.
//!
//! The default build is portable x86-64: the AVX2 and AVX-512 code paths (ML-DSA in
//! libcrux, the four-lane hashing of `agora-sha3x4`) are chosen at run time. An operator
//! may build for a newer level instead (`RUSTFLAGS="-C target-cpu=x86-64-v4"`, as
//! `bench/compare-etcd.sh --target-cpu x86-64-v4` does): the compiler then uses those
//! instructions everywhere, which made ML-DSA verification about 1.5x faster here
//! (BENCHMARKS.md), and the binary dies of an illegal instruction on a CPU without them.
//! [`check`] turns that crash into a sentence, before the node does anything else.

/// An instruction-set extension: its name, whether this build assumes it, and whether
/// the running CPU has it.
pub type Feature = (&'static str, bool, fn() -> bool);

/// One [`Feature`] from its name, written once.
#[cfg(target_arch = "x86_64")]
macro_rules! feature {
    ($name:tt) => {
        ($name, cfg!(target_feature = $name), || {
            std::is_x86_feature_detected!($name)
        })
    };
}

/// The extensions a build may assume (x86-64-v2 to v4).
#[cfg(target_arch = "x86_64")]
static ASSUMED: [Feature; 9] = [
    feature!("sse4.2"),
    feature!("avx"),
    feature!("avx2"),
    feature!("bmi2"),
    feature!("fma"),
    feature!("avx512f"),
    feature!("avx512vl"),
    feature!("avx512bw"),
    feature!("avx512dq"),
];

/// The extensions the build assumes that the CPU lacks, in order.
pub fn missing(features: &[Feature]) -> Vec<&'static str> {
    features
        .iter()
        .filter(|(_, built_with, present)| *built_with && !present())
        .map(|(name, _, _)| *name)
        .collect()
}

/// The operator's error when this binary was built for instructions this CPU lacks.
pub fn check() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        let lacking = missing(&ASSUMED);
        if !lacking.is_empty() {
            return Err(explain(&lacking));
        }
    }
    Ok(())
}

fn explain(lacking: &[&str]) -> String {
    format!(
        "this agora-node was built for CPU instructions this machine lacks ({}): build it \
         without `-C target-cpu` (the portable default chooses AVX2 and AVX-512 code at run \
         time), or run it on a CPU that has them",
        lacking.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_build_assumes_and_the_cpu_lacks_is_missing() {
        let features: [Feature; 4] = [
            ("avx2", true, || true),
            ("avx512f", true, || false),
            ("avx512vl", false, || false),
            ("avx512bw", true, || false),
        ];
        assert_eq!(missing(&features), vec!["avx512f", "avx512bw"]);
        assert_eq!(missing(&features[..1]), Vec::<&str>::new());
        let message = explain(&missing(&features));
        assert!(message.contains("(avx512f, avx512bw)"), "{message}");
        assert!(message.contains("-C target-cpu"), "{message}");
    }

    /// A test binary runs on the CPU it was built for, whatever `RUSTFLAGS` said: the
    /// check must pass (with `-C target-cpu=native` too, where every assumed feature is
    /// one the detector must find).
    #[test]
    fn this_build_runs_on_this_cpu() {
        assert_eq!(check(), Ok(()));
    }
}
