//! Embeds every board folder (`boards/<name>/board.toml` and the constraint file it names) in
//! the library, so adding a board is adding a folder: no code changes.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not baked in at compile time: a build script compiled for one
    // checkout may be rerun from another that shares the target directory.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest);
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .expect("boards/ is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("board.toml").is_file())
        .collect();
    dirs.sort();
    let mut out =
        String::from("/// `(folder name, [(file name, contents)])` of every board folder.\n");
    out.push_str("pub(crate) const EMBEDDED: &[(&str, &[(&str, &str)])] = &[\n");
    for d in &dirs {
        println!("cargo:rerun-if-changed={}", d.display());
        let name = d.file_name().unwrap().to_string_lossy();
        let mut files: Vec<_> = std::fs::read_dir(d)
            .expect("board folder is readable")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let _ = writeln!(out, "    ({name:?}, &[");
        for f in files {
            let file = f.file_name().unwrap().to_string_lossy();
            let _ = writeln!(
                out,
                "        ({file:?}, include_str!({:?})),",
                f.display().to_string()
            );
        }
        out.push_str("    ]),\n");
    }
    out.push_str("];\n");
    println!("cargo:rerun-if-changed={}", root.display());
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
