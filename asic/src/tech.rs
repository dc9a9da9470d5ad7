//! The standard-cell libraries qflow ships (`qflow-tech-osu018/035/050`): where their liberty,
//! LEF and Verilog cell models are, read from the tech folder's own qflow settings file.

use std::path::{Path, PathBuf};

use crate::Error;

/// The command that installs the ASIC tools and libraries.
pub const INSTALL_ASIC: &str = "scripts/setup.sh --asic";

/// The tech names `--tech` takes.
pub const TECHS: &[&str] = &["osu018", "osu035", "osu050"];

/// Where Debian's qflow keeps its tech folders.
pub const TECH_ROOT: &str = "/usr/share/qflow/tech";

/// One standard-cell library.
#[derive(Clone, Debug)]
pub struct Tech {
    /// `osu018`, `osu035`, `osu050`.
    pub name: String,
    /// The tech folder.
    pub dir: PathBuf,
    /// Timing, power and area of every cell.
    pub liberty: PathBuf,
    /// Cell outlines and pins, for placement and routing.
    pub lef: PathBuf,
    /// Behavioural Verilog of the cells, for the gate-level simulation.
    pub verilog: PathBuf,
}

impl Tech {
    /// The library `name`: an unknown name is an error listing the known ones; a known one
    /// that is not installed is an error with the install command.
    pub fn load(name: &str) -> Result<Tech, Error> {
        if !TECHS.contains(&name) {
            return Err(Error::UnknownTech {
                name: name.to_string(),
                known: TECHS.join(", "),
            });
        }
        let root = std::env::var_os("FLIPCHIP_QFLOW_TECH")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(TECH_ROOT));
        let dir = root.join(name);
        let settings = dir.join(format!("{name}.sh"));
        let text = std::fs::read_to_string(&settings).map_err(|_| Error::MissingTech {
            name: name.to_string(),
            path: settings.clone(),
            install: INSTALL_ASIC.to_string(),
        })?;
        let liberty = dir.join(setting(&text, "libertyfile", &settings)?);
        let lef = dir.join(setting(&text, "leffile", &settings)?);
        let verilog = cell_models(&dir)?;
        for f in [&liberty, &lef] {
            if !f.is_file() {
                return Err(Error::MissingTech {
                    name: name.to_string(),
                    path: f.clone(),
                    install: INSTALL_ASIC.to_string(),
                });
            }
        }
        Ok(Tech {
            name: name.to_string(),
            dir,
            liberty,
            lef,
            verilog,
        })
    }
}

/// The value of `set key=value` in a qflow tech settings file (a tcsh script).
fn setting(text: &str, key: &str, file: &Path) -> Result<String, Error> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("set "))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"')
                .to_string()
        })
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Parse {
            path: file.to_path_buf(),
            message: format!("no `set {key}=...`"),
        })
}

/// The `*_stdcells.v` file of a tech folder (the settings file does not name it).
fn cell_models(dir: &Path) -> Result<PathBuf, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("_stdcells.v"))
        })
        .collect();
    found.sort();
    found.into_iter().next().ok_or_else(|| Error::MissingTech {
        name: dir.display().to_string(),
        path: dir.join("*_stdcells.v"),
        install: INSTALL_ASIC.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_without_their_comments() {
        let text = "# c\nset leffile=osu018_stdcells.lef\nset flopcell=DFFPOSX1\t;# DFF\n";
        let f = Path::new("x.sh");
        assert_eq!(setting(text, "leffile", f).unwrap(), "osu018_stdcells.lef");
        assert_eq!(setting(text, "flopcell", f).unwrap(), "DFFPOSX1");
        assert!(setting(text, "libertyfile", f).is_err());
    }

    #[test]
    fn an_unknown_tech_names_the_known_ones() {
        let e = Tech::load("sky130").unwrap_err().to_string();
        assert!(e.contains("sky130") && e.contains("osu018"), "{e}");
    }
}
