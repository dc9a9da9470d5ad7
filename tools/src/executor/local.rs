//! Units on this machine, a few at a time (each is an external tool run that takes a core).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{prepare_all, Event, ExecError, Executor, Failure, Outcome, Unit};
use crate::{Run, ToolError};

/// Runs units as child processes, `workers` at a time.
#[derive(Clone, Debug)]
pub struct Local {
    /// Units at once.
    pub workers: usize,
    /// Runs more of a failing unit.
    pub retries: usize,
}

impl Local {
    /// One attempt of `unit`: how it failed, or `None` when it left its result.
    fn attempt(unit: &Unit, attempts: usize) -> Option<Failure> {
        let ran = Run::new("unit", &unit.program, unit.log_path())
            .args(&unit.args)
            .current_dir(&unit.dir)
            .timeout(unit.limit)
            .allow_failure()
            .run();
        let state = match ran {
            Ok(r) if r.success && unit.finished() => return None,
            Ok(r) if r.success => format!("exited successfully without writing {}", Unit::RESULT),
            Ok(_) => "FAILED (non-zero exit status)".to_string(),
            Err(ToolError::TimedOut { seconds, .. }) => {
                format!("TIMEOUT (stopped after {seconds:.0} s)")
            }
            Err(e) => format!("FAILED ({e})"),
        };
        Some(Failure::new(unit, state, attempts))
    }
}

impl Executor for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn run(
        &self,
        units: &[Unit],
        events: &mut dyn FnMut(Event),
    ) -> Result<Vec<Outcome>, ExecError> {
        let mut outcomes = prepare_all(units, events)?;
        let todo: Vec<usize> = (0..units.len())
            .filter(|&i| outcomes[i].is_none())
            .collect();
        let next = AtomicUsize::new(0);
        // The workers tell the caller's (not thread-safe) event handler through a channel.
        enum Msg {
            Started(usize),
            Done(usize),
            Failed(usize, Failure, bool),
            Concluded(usize, Outcome),
        }
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        std::thread::scope(|s| {
            for _ in 0..self.workers.clamp(1, todo.len().max(1)) {
                let tx = tx.clone();
                let (todo, next) = (&todo, &next);
                s.spawn(move || loop {
                    let j = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = todo.get(j) else { break };
                    let unit = &units[i];
                    let mut attempts = 0;
                    let outcome = loop {
                        attempts += 1;
                        let _ = tx.send(Msg::Started(i));
                        match Local::attempt(unit, attempts) {
                            None => {
                                let _ = tx.send(Msg::Done(i));
                                break Outcome::Done { skipped: false };
                            }
                            Some(f) => {
                                let retry = attempts <= self.retries;
                                let _ = tx.send(Msg::Failed(i, f.clone(), retry));
                                if !retry {
                                    break Outcome::Failed(f);
                                }
                            }
                        }
                    };
                    let _ = tx.send(Msg::Concluded(i, outcome));
                });
            }
            drop(tx);
            for m in rx {
                match m {
                    Msg::Started(i) => events(Event::Started(i)),
                    Msg::Done(i) => events(Event::Done(i)),
                    Msg::Failed(i, f, retry) => events(Event::Failed(i, &f, retry)),
                    Msg::Concluded(i, o) => outcomes[i] = Some(o),
                }
            }
        });
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every unit ran or was skipped"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{scratch, sh_unit};
    use super::*;

    #[test]
    fn units_run_fail_retry_and_resume() {
        let d = scratch("local");
        // The second unit fails on its first attempt only: a retry finishes it.
        let units = vec![
            sh_unit(&d, "ok", "1", "echo done > result.json"),
            sh_unit(
                &d,
                "flaky",
                "2",
                "if [ -f tried ]; then echo ok > result.json; else touch tried; echo broken; exit 3; fi",
            ),
            sh_unit(&d, "bad", "3", "echo no tools here; exit 1"),
        ];
        let ex = Local {
            workers: 2,
            retries: 1,
        };
        let mut seen = Vec::new();
        let out = ex
            .run(&units, &mut |e| seen.push(format!("{e:?}")))
            .unwrap();
        assert_eq!(out[0], Outcome::Done { skipped: false });
        assert_eq!(out[1], Outcome::Done { skipped: false });
        let Outcome::Failed(f) = &out[2] else {
            panic!("{out:?}")
        };
        assert_eq!(f.attempts, 2);
        assert_eq!(f.log, d.join("bad").join(Unit::LOG));
        let text = f.to_string();
        assert!(
            text.contains("FAILED") && text.contains("no tools here") && text.contains("unit.log"),
            "{text}"
        );
        assert_eq!(
            seen.iter().filter(|e| e.starts_with("Failed(1")).count(),
            1,
            "{seen:?}"
        );
        // Again: the finished units are skipped, the failed one runs again.
        let mut seen = Vec::new();
        let out = ex
            .run(&units, &mut |e| seen.push(format!("{e:?}")))
            .unwrap();
        assert_eq!(out[0], Outcome::Done { skipped: true });
        assert_eq!(out[1], Outcome::Done { skipped: true });
        assert!(matches!(out[2], Outcome::Failed(_)));
        assert!(seen.contains(&"Skipped(0)".to_string()), "{seen:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
