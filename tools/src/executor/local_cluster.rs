//! For tests: the single-node cluster of `scripts/slurm-local.sh`, stopped when dropped (also
//! when a test panics), so that the test suite exercises the real `sbatch` path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Run;

/// A running local cluster.
#[derive(Debug)]
pub struct LocalCluster {
    dir: PathBuf,
    conf: PathBuf,
}

/// The script that starts and stops it.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-local.sh")
}

impl LocalCluster {
    /// Starts a cluster with its state in `dir` (removed again by [`Drop`]). `None` after
    /// [`crate::tool_missing`] when Slurm is not installed or this is not root (a panic under
    /// [`crate::REQUIRE_TOOLS`]); a panic when the installed Slurm does not come up.
    pub fn start(dir: &Path) -> Option<LocalCluster> {
        for tool in ["munged", "slurmctld", "slurmd", "sbatch"] {
            crate::for_test(&[tool], super::INSTALL_SLURM)?;
        }
        // SAFETY: geteuid only reads the process's credentials.
        if unsafe { libc::geteuid() } != 0 {
            crate::tool_missing("the local Slurm cluster runs its daemons as root");
            return None;
        }
        let _ = std::fs::create_dir_all(dir);
        let log = dir.with_extension("start.log");
        let started = Run::new("slurm-local", "/bin/bash", &log)
            .arg(script())
            .arg("start")
            .arg(dir)
            .timeout(Duration::from_secs(120))
            .run();
        let cluster = LocalCluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
        };
        if let Err(e) = started {
            drop(cluster);
            panic!("{e}");
        }
        Some(cluster)
    }

    /// Its `slurm.conf`: the clients reach it with `SLURM_CONF` set to this.
    pub fn conf(&self) -> &Path {
        &self.conf
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let log = self.dir.with_extension("stop.log");
        if let Err(e) = Run::new("slurm-local", "/bin/bash", &log)
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .timeout(Duration::from_secs(60))
            .run()
        {
            eprintln!("stopping the local Slurm cluster: {e}");
        }
    }
}
