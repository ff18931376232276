//! The AFL++ entry point: `agora-fuzz-afl TARGET` reads one input per run from AFL++ and
//! runs the target on it (see `fuzz/README.md`).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = agora_fuzz::Target::parse(&name) else {
        let names: Vec<&str> = agora_fuzz::Target::ALL.iter().map(|t| t.name()).collect();
        eprintln!(
            "usage: agora-fuzz-afl TARGET (one of: {})",
            names.join(", ")
        );
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| {
        agora_fuzz::run(target, data);
    });
}
