//! Shared by the compiler's integration tests.

use compiler::blocks::Family;

/// `(LUT4s, block RAMs)` the family's Yosys ([`Family::yosys`]) makes of a compiled design,
/// counted as `flipchip dse --synth` counts them; `None` where that Yosys is missing (a
/// failure under FLIPCHIP_REQUIRE_TOOLS=1).
pub fn yosys_counts(d: &compiler::ir::Design, family: Family, tag: &str) -> Option<(u64, u64)> {
    let yosys = tools::for_test(&[family.yosys()], family.yosys_install())?;
    let dir = std::env::temp_dir().join(format!("flipchip-synth-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    compiler::write_build(d, &dir).unwrap();
    // Names relative to the run's directory: YoWASP's Yosys sees only that directory.
    let script = family.synth_script(
        &d.file_names(),
        compiler::TOP,
        std::path::Path::new("stat.txt"),
    );
    tools::Run::new("synth", yosys, "yosys.log")
        .args(["-q", "-p", &script])
        .current_dir(&dir)
        .default_timeout(tools::limits::SYNTH)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let stat = dir.join("stat.txt");
    let text = std::fs::read_to_string(&stat).unwrap();
    let counts = family
        .count_luts(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", stat.display()));
    let _ = std::fs::remove_dir_all(&dir);
    Some(counts)
}
