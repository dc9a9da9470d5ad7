//! `flipchip regress` end to end: the example suite (its JUnit file read by an XML parser), a
//! second run that takes every result from the first, a broken design whose cases fail with
//! the divergence in JSON and JUnit, a proof as a check, and bad suite files.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/regress/smoke.toml")
}

/// Per case: status and message, from the JSON summary.
fn outcomes(summary: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    summary["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["case"].as_str().unwrap().to_string(),
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["message"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// A JUnit test case as parsed: class, name, and the failure's message and text if any.
struct JunitCase {
    class: String,
    name: String,
    failure: Option<(String, String)>,
}

/// Parses a JUnit file with a real XML parser and checks its shape: one `testsuite` whose
/// counts match its `testcase` children.
fn junit(path: &Path) -> (roxmltree::Node<'static, 'static>, Vec<JunitCase>) {
    let text: &'static str = Box::leak(std::fs::read_to_string(path).unwrap().into_boxed_str());
    let doc: &'static roxmltree::Document = Box::leak(Box::new(
        roxmltree::Document::parse(text)
            .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display())),
    ));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1, "{text}");
    let suite = suites[0];
    let cases: Vec<JunitCase> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|c| JunitCase {
            class: c.attribute("classname").unwrap().to_string(),
            name: c.attribute("name").unwrap().to_string(),
            failure: c.children().find(|n| n.has_tag_name("failure")).map(|f| {
                (
                    f.attribute("message").unwrap().to_string(),
                    f.text().unwrap_or_default().to_string(),
                )
            }),
        })
        .collect();
    let attr = |k: &str| suite.attribute(k).unwrap().parse::<usize>().unwrap();
    assert_eq!(attr("tests"), cases.len());
    assert_eq!(
        attr("failures") + attr("errors"),
        cases.iter().filter(|c| c.failure.is_some()).count()
    );
    (suite, cases)
}

#[test]
fn the_example_suite_passes_and_a_second_run_reuses_every_result() {
    if tools::for_test(&["verilator"], tools::INSTALL).is_none() {
        return;
    }
    let dir = scratch("regress-example");
    let (work, xml) = (dir.join("work"), dir.join("smoke.xml"));
    let run = || {
        flipchip_ok(&[
            "regress",
            s(&example()),
            "--jobs",
            "2",
            "--json",
            "--junit",
            s(&xml),
            "--workdir",
            s(&work),
        ])
    };
    let out = run();
    let first = last_json(&out);
    let err = stderr(&out);
    // 2 models x 2 foldings x (2 stimuli x (reference + verilator) + cycles).
    assert_eq!(first["cases"], 20, "{first}");
    assert_eq!(first["passed"], 20, "{err}");
    assert_eq!(first["cached"], 0, "{first}");
    assert!(err.contains("check         cases  passed"), "{err}");
    let results = outcomes(&first);
    assert_eq!(results.len(), 20);
    for check in ["reference", "verilator", "cycles"] {
        assert!(
            results.keys().any(|k| k.contains(&format!("/{check}"))),
            "{check}"
        );
    }
    let (suite, cases) = junit(&xml);
    assert_eq!(suite.attribute("name"), Some("smoke"));
    assert_eq!(cases.len(), 20);
    assert!(cases.iter().all(|c| c.failure.is_none()));
    let mut ids: Vec<String> = cases
        .iter()
        .map(|c| format!("{} {}", c.class, c.name))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "test case ids are unique");
    assert!(cases
        .iter()
        .any(|c| c.class == "smoke.digits-s1.auto" && c.name == "verilator 8f-b30-s30-seed2"));

    // Nothing changed: every result comes from the work directory, and they are the same.
    let out = run();
    let second = last_json(&out);
    assert_eq!(second["cached"], 20, "{second}");
    assert_eq!(outcomes(&second), results);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A suite of one random model, folded one frame per 4 cycles, whose cycle bound no design
/// meets.
fn small_suite(dir: &Path, checks: &str) -> PathBuf {
    let suite = dir.join("small.toml");
    std::fs::write(
        &suite,
        format!(
            "checks = [{checks}]\n\
             [[models]]\nname = \"r\"\nrandom = {{ pixels = 4, widths = [4, 2] }}\n\
             [foldings]\nauto = false\ntarget_cycles = [4]\n\
             [[stimulus]]\nframes = 6\nbubbles = 20\nstalls = 20\nseeds = [5]\n\
             [cycles]\nmax_cycles_per_frame = 1\n\
             [prove]\ngroups = [\"handshake\"]\ndepth = 4\ntimeout = 40\n"
        ),
    )
    .unwrap();
    suite
}

#[test]
fn a_broken_design_fails_its_cases_with_the_first_divergence() {
    let dir = scratch("regress-broken");
    let rtl = verilator_or_none();
    let checks = if rtl == "verilator" {
        "\"reference\", \"verilator\", \"cycles\""
    } else {
        "\"reference\", \"cycles\""
    };
    let suite = small_suite(&dir, checks);
    let (work, xml) = (dir.join("work"), dir.join("small.xml"));
    let args = [
        "regress",
        s(&suite),
        "--json",
        "--junit",
        s(&xml),
        "--workdir",
        s(&work),
    ];
    // The cycle bound of 1 is not met: that case fails, the others pass, the exit status says so.
    let out = flipchip(&args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let v = last_json(&out);
    let results = outcomes(&v);
    let (status, message) = &results["r-s1/cycles4/cycles"];
    assert_eq!(status, "failed", "{v}");
    assert!(
        message.contains("4 cycles per frame, more than the suite's 1"),
        "{message}"
    );
    assert!(
        err.contains("FAILED r-s1/cycles4/cycles: 4 cycles per frame"),
        "{err}"
    );
    assert!(err.contains("1 of"), "{err}");
    assert_eq!(v["failed"], 1, "{v}");
    let (_, cases) = junit(&xml);
    let failing: Vec<&JunitCase> = cases.iter().filter(|c| c.failure.is_some()).collect();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0].name, "cycles");
    let (msg, text) = failing[0].failure.clone().unwrap();
    assert_eq!(&msg, message);
    // The case's own log is the failure's text.
    assert!(
        text.contains("case r-s1/cycles4/cycles: cycles on"),
        "{text}"
    );
    if rtl != "verilator" {
        return;
    }

    // The argmax drops its result whether or not the sink takes it: the simulator (which
    // never reads the Verilog) still matches the reference, Verilator does not match the
    // simulator, and the case says where they part.
    break_argmax_handshake(&work.join("designs/r-s1/cycles4/argmax.v"));
    let out = flipchip(&args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let v = last_json(&out);
    assert_eq!(v["cached"], 0, "a changed design is checked again: {v}");
    let results = outcomes(&v);
    assert_eq!(results["r-s1/cycles4/reference"].0, "passed", "{v}");
    let (status, message) = &results["r-s1/cycles4/verilator"];
    assert_eq!(status, "failed", "{v}");
    assert!(
        message.contains("simulator vs verilator: first divergence at cycle")
            && message.contains("output beat(s) differ"),
        "{message}"
    );
    assert!(
        err.contains("FAILED r-s1/cycles4/verilator: simulator vs verilator"),
        "{err}"
    );
    let (_, cases) = junit(&xml);
    let v_case = cases.iter().find(|c| c.name == "verilator").unwrap();
    assert_eq!(&v_case.failure.as_ref().unwrap().0, message);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_prove_check_runs_the_proof_of_each_design() {
    let install = "scripts/setup.sh --formal";
    for t in [
        &["yowasp-sby"][..],
        &["yices-smt2"],
        &["z3"],
        &["berkeley-abc", "yosys-abc"],
    ] {
        if tools::for_test(t, install).is_none() {
            return;
        }
    }
    let dir = scratch("regress-prove");
    let suite = small_suite(&dir, "\"prove\"");
    let out = flipchip_ok(&[
        "regress",
        s(&suite),
        "--json",
        "--workdir",
        s(&dir.join("w")),
    ]);
    let v = last_json(&out);
    let (status, message) = &outcomes(&v)["r-s1/cycles4/prove"];
    assert_eq!(status, "passed", "{v}");
    assert_eq!(message, "proven: handshake");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_suite_files_are_errors_naming_the_file_and_the_key() {
    let dir = scratch("regress-bad");
    let bad = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = flipchip(&["regress", s(&path), "--workdir", s(&dir.join("w"))]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(&format!("suite file {}", path.display())),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    let model = "[[models]]\nrandom = { pixels = 4, widths = [2] }\n";
    let err = bad(
        "a.toml",
        &format!("checks = [\"reference\", \"fast\"]\n{model}"),
    );
    assert!(
        err.contains("checks: unknown check \"fast\"; known: reference"),
        "{err}"
    );
    let err = bad(
        "b.toml",
        &format!("checks = [\"cycles\"]\n{model}[[stimulus]]\nframe = 3\n"),
    );
    assert!(err.contains("unknown field `frame`"), "{err}");
    let err = bad(
        "c.toml",
        &format!("checks = [\"cycles\"]\n{model}[foldings]\nfiles = [\"no.json\"]\n"),
    );
    assert!(
        err.contains("foldings.files") && err.contains("no.json"),
        "{err}"
    );
    let err = bad(
        "d.toml",
        "checks = [\"cycles\"]\n[[models]]\nfile = \"missing.fcm\"\n",
    );
    assert!(err.contains("missing.fcm"), "{err}");
    let out = flipchip(&["regress", s(&dir.join("none.toml"))]);
    assert!(
        stderr(&out).contains("reading suite file"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_case_that_cannot_run_is_an_error_with_its_log_and_runs_again_next_time() {
    let dir = scratch("regress-error");
    let suite = small_suite(&dir, "\"reference\", \"icarus\"");
    let (work, xml) = (dir.join("work"), dir.join("e.xml"));
    // Without a PATH (and no project venv) the Icarus case finds no iverilog.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flipchip"))
        .args([
            "regress",
            s(&suite),
            "--json",
            "--junit",
            s(&xml),
            "--workdir",
            s(&work),
        ])
        .env("PATH", "")
        .env("FLIPCHIP_FPGA_VENV", s(&dir.join("no-venv")))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let v = last_json(&out);
    assert_eq!(
        (v["passed"].as_u64(), v["errors"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let (status, message) = &outcomes(&v)["r-s1/cycles4/icarus"];
    assert_eq!(status, "error");
    assert!(message.contains("iverilog not found"), "{message}");
    assert!(err.contains("ERROR r-s1/cycles4/icarus"), "{err}");
    let (_, cases) = junit(&xml);
    let (msg, text) = cases
        .iter()
        .find(|c| c.name == "icarus")
        .and_then(|c| c.failure.clone())
        .unwrap();
    assert!(
        msg.contains("iverilog not found") && text.contains("iverilog not found"),
        "{text}"
    );
    // The error is not a result: the next run tries the case again (the reference case is kept).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flipchip"))
        .args(["regress", s(&suite), "--json", "--workdir", s(&work)])
        .env("PATH", "")
        .env("FLIPCHIP_FPGA_VENV", s(&dir.join("no-venv")))
        .output()
        .unwrap();
    let v = last_json(&out);
    assert_eq!(v["cached"], 1, "{v}");
    assert_eq!(v["errors"], 1, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}
