//! `--executor slurm` end to end, through the real `sbatch`, on the single-node cluster of
//! `scripts/slurm-local.sh` (started here and stopped even when the test fails).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tools::executor::local_cluster::LocalCluster;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn flipchip(conf: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flipchip"));
    c.env("SLURM_CONF", conf);
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// dse.json without what may differ between runs: wall times and where the runs happened.
fn comparable(out: &Path) -> serde_json::Value {
    let path = out.join("dse.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("explore_seconds");
    let synth = v["synth"].as_array_mut().unwrap();
    assert_eq!(synth.len(), 3, "{}", path.display());
    for r in synth {
        let r = r.as_object_mut().unwrap();
        assert!(r["yosys_luts"].as_u64().unwrap() > 0, "{r:?}");
        for k in ["seconds", "dir", "cached"] {
            r.remove(k);
        }
    }
    v
}

fn count(text: &str, what: &str) -> usize {
    text.matches(what).count()
}

/// A scratch directory `name` with a local cluster started in it (`None` where Slurm is missing
/// and tools are not required) and a tiny digits model trained there.
fn cluster_and_model(name: &str) -> Option<(PathBuf, LocalCluster, PathBuf)> {
    let dir = scratch(name);
    let cluster = LocalCluster::start(&dir.join("cluster"))?;
    let model = dir.join("tiny.fcm");
    ok(flipchip(cluster.conf())
        .args(["train", "--arch", "64-4-10", "--epochs", "1", "--seed", "1"])
        .arg("--out")
        .arg(&model)
        .arg("--quiet")
        .output()
        .unwrap());
    Some((dir, cluster, model))
}

#[test]
fn dse_synth_on_slurm_matches_local_reports_failures_and_resumes() {
    let Some(_) = tools::for_test(&["yosys"], tools::INSTALL) else {
        return;
    };
    let Some((dir, cluster, model)) = cluster_and_model("slurm-dse") else {
        return;
    };
    let conf = cluster.conf().to_path_buf();
    let dse = |out: &Path, extra: &[&str]| {
        let mut c = flipchip(&conf);
        c.arg("dse")
            .arg(&model)
            .args(["--device", "up5k", "--synth", "3", "--out"])
            .arg(out)
            .args(extra);
        c
    };

    let local = dir.join("local");
    ok(dse(&local, &[]).output().unwrap());
    let expected = comparable(&local);

    // Jobs without the tools (no yosys on their PATH) fail, are retried once, and are
    // reported with their Slurm state, their log and the install command.
    let slurm = dir.join("slurm");
    let broken = [
        "--executor",
        "slurm",
        "--partition",
        "local",
        "--retries",
        "1",
    ];
    let out = dse(&slurm, &broken)
        .arg("--slurm-arg=--export=ALL,PATH=/nonexistent")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("3 of 3 synth step(s) failed")
            && count(&err, "FAILED (exit code 1:0") >= 3
            && err.contains("after 2 attempts")
            && err.contains("retrying")
            && err.contains("install it with scripts/setup.sh"),
        "{err}"
    );
    let log = slurm.join("synth/1x1_1x1/unit.log");
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("yosys not found"));
    assert!(!slurm.join("dse.json").exists());

    // The same work directory with the tools: every unit runs, the results are the local ones.
    let out = ok(dse(&slurm, &broken[..4]).output().unwrap());
    let err = stderr(&out);
    assert_eq!(count(&err, "submitted job array"), 1, "{err}");
    assert!(err.contains("submission to start"), "{err}");
    assert_eq!(comparable(&slurm), expected);

    // Again: nothing is submitted, every result comes from the work directory.
    let out = ok(dse(&slurm, &broken[..4]).output().unwrap());
    let err = stderr(&out);
    assert_eq!(count(&err, "(earlier run)"), 3, "{err}");
    assert_eq!(count(&err, "submitted job array"), 0, "{err}");
    assert_eq!(comparable(&slurm), expected);

    // An earlier result is compared with this run's estimate, not the one it recorded (the
    // estimator may have been refitted since).
    let result = slurm.join("synth/1x1_1x1/result.json");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    r["est_luts"] = 1.into();
    r["lut_error"] = (-1.0).into();
    std::fs::write(&result, r.to_string()).unwrap();
    ok(dse(&slurm, &broken[..4]).output().unwrap());
    assert_eq!(comparable(&slurm), expected);

    // Interrupted once a result is in: the rest is cancelled, and the next run keeps the
    // finished results and runs only the others.
    let int = dir.join("interrupted");
    let child = dse(&int, &broken[..4])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = || {
        std::fs::read_dir(int.join("synth")).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().join("result.json").is_file())
            })
            .count()
        })
    };
    let t = Instant::now();
    while results() == 0 && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = results();
    // Two CPUs for three units: when the first result is in, the third has yet to finish.
    assert!(
        (1..3).contains(&before),
        "{before} results after {:?}",
        t.elapsed()
    );
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    {
        assert!(err.contains("interrupted; cancelled Slurm job"), "{err}");
        let queue = Command::new("squeue")
            .env("SLURM_CONF", &conf)
            .args(["-h", "-n", "flipchip-dse-synth", "-t", "PENDING,RUNNING"])
            .output()
            .unwrap();
        let queue = String::from_utf8_lossy(&queue.stdout).into_owned();
        assert!(queue.trim().is_empty(), "still queued: {queue}");
    }
    let out = ok(dse(&int, &broken[..4]).output().unwrap());
    let err = stderr(&out);
    assert!(count(&err, "(earlier run)") >= before, "{err}");
    assert_eq!(comparable(&int), expected);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// build.json without what may differ between runs: wall times and file locations.
fn build_result(out: &Path) -> serde_json::Value {
    let path = out.join("build.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let o = v.as_object_mut().unwrap();
    assert!(o["luts"].as_u64().unwrap() > 0, "{}", path.display());
    assert!(
        Path::new(o["bitstream"].as_str().unwrap()).starts_with(out),
        "{}",
        path.display()
    );
    for k in ["seconds", "step_seconds", "bitstream"] {
        o.remove(k);
    }
    v
}

#[test]
fn build_on_slurm_matches_local_in_a_separate_workdir() {
    for tool in ["yosys", "nextpnr-ice40", "icepack"] {
        let Some(_) = tools::for_test(&[tool], tools::INSTALL) else {
            return;
        };
    }
    let Some((dir, cluster, model)) = cluster_and_model("slurm-build") else {
        return;
    };
    let conf = cluster.conf().to_path_buf();
    let build = |out: &Path, extra: &[&str]| {
        let mut c = flipchip(&conf);
        c.arg("build")
            .arg(&model)
            .args(["--board", "icebreaker", "--seed", "1", "--out"])
            .arg(out)
            .args(extra);
        ok(c.output().unwrap())
    };
    let local = dir.join("local");
    build(&local, &[]);
    let (slurm, work) = (dir.join("slurm"), dir.join("work"));
    let out = build(
        &slurm,
        &["--executor", "slurm", "--workdir", work.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(count(&err, "submitted job array"), 1, "{err}");
    assert!(work.join("build/result.json").is_file());
    assert!(slurm.join("board.bin").is_file());
    assert_eq!(build_result(&slurm), build_result(&local));
    // Again: the flow's result comes from the work directory.
    let out = build(
        &slurm,
        &["--executor", "slurm", "--workdir", work.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert!(err.contains("taken from the earlier run"), "{err}");
    assert_eq!(count(&err, "submitted job array"), 0, "{err}");
    assert_eq!(build_result(&slurm), build_result(&local));
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Per case of a `regress --json` summary: status and message (what a run must reproduce).
fn regress_outcomes(out: &Output) -> Vec<(String, String, String)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("case"), s("status"), s("message"))
        })
        .collect()
}

#[test]
fn regress_on_slurm_gives_the_local_results() {
    let Some(_) = tools::for_test(&["verilator"], tools::INSTALL) else {
        return;
    };
    let Some((dir, cluster, model)) = cluster_and_model("slurm-regress") else {
        return;
    };
    let suite = dir.join("suite.toml");
    std::fs::write(
        &suite,
        format!(
            "checks = [\"reference\", \"verilator\", \"cycles\"]\n\
             [[models]]\nname = \"tiny\"\nfile = \"{}\"\n\
             [[models]]\nname = \"r\"\nrandom = {{ pixels = 6, widths = [4, 3] }}\n\
             [foldings]\nauto = true\n\
             [[stimulus]]\nframes = 5\nbubbles = 25\nstalls = 25\nseeds = [3]\n\
             [cycles]\nmax_latency = 100\n",
            model.display()
        ),
    )
    .unwrap();
    let regress = |work: &Path, extra: &[&str]| {
        flipchip(cluster.conf())
            .arg("regress")
            .arg(&suite)
            .args(["--json", "--workdir"])
            .arg(work)
            .args(extra)
            .output()
            .unwrap()
    };
    // The tiny digits model's latency is above the bound: those cases fail alike on both.
    let local = regress(&dir.join("local"), &[]);
    assert!(!local.status.success());
    let expected = regress_outcomes(&local);
    assert_eq!(expected.len(), 6, "{expected:?}");
    let failed: Vec<_> = expected.iter().filter(|c| c.1 != "passed").collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|c| c.0.ends_with("/cycles")),
        "{expected:?}"
    );
    let slurm = regress(
        &dir.join("slurm"),
        &["--executor", "slurm", "--partition", "local"],
    );
    let err = stderr(&slurm);
    assert!(!slurm.status.success(), "{err}");
    assert_eq!(count(&err, "submitted job array"), 1, "{err}");
    assert_eq!(regress_outcomes(&slurm), expected, "{err}");
    // A work directory the nodes cannot be told about is refused.
    let out = flipchip(cluster.conf())
        .arg("regress")
        .arg(&suite)
        .args(["--executor", "slurm"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("--executor slurm needs --workdir"),
        "{}",
        stderr(&out)
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// asic.json without what may differ between runs: wall times and file locations.
fn asic_result(out: &Path) -> serde_json::Value {
    let path = out.join("asic.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let o = v.as_object_mut().unwrap();
    assert!(o["cells"].as_u64().unwrap() > 0, "{}", path.display());
    assert_eq!(o["gate_level"]["mismatches"], 0, "{}", path.display());
    assert!(
        Path::new(o["netlist"].as_str().unwrap()).starts_with(out),
        "{}",
        path.display()
    );
    for k in ["seconds", "step_seconds", "netlist"] {
        o.remove(k);
    }
    v
}

#[test]
fn asic_on_slurm_matches_local_in_a_separate_workdir() {
    for tool in ["yosys", "sta", "iverilog"] {
        let Some(_) = tools::for_test(&[tool], "scripts/setup.sh --asic") else {
            return;
        };
    }
    let Some((dir, cluster, model)) = cluster_and_model("slurm-asic") else {
        return;
    };
    let conf = cluster.conf().to_path_buf();
    let asic = |out: &Path, extra: &[&str]| {
        let mut c = flipchip(&conf);
        c.arg("asic")
            .arg(&model)
            .args([
                "--tech", "osu018", "--clock", "100", "--frames", "4", "--out",
            ])
            .arg(out)
            .args(extra);
        ok(c.output().unwrap())
    };
    let local = dir.join("local");
    asic(&local, &[]);
    let (slurm, work) = (dir.join("slurm"), dir.join("work"));
    let out = asic(
        &slurm,
        &["--executor", "slurm", "--workdir", work.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(count(&err, "submitted job array"), 1, "{err}");
    assert!(slurm.join("asic_netlist.v").is_file(), "{err}");
    assert_eq!(asic_result(&slurm), asic_result(&local));
    // Again: the result comes from the work directory, with nothing submitted.
    let out = asic(
        &slurm,
        &["--executor", "slurm", "--workdir", work.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert!(err.contains("taken from the earlier run"), "{err}");
    assert_eq!(count(&err, "submitted job array"), 0, "{err}");
    assert_eq!(asic_result(&slurm), asic_result(&local));
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
