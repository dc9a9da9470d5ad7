//! Minimum-area patches on the routed layout, before Magic's DRC: the router leaves metal
//! shapes smaller than the rules' minimum area where nothing widens them, and Magic counts
//! each as an error. Measured on the 64-32-10 digits design (OSU018): four were input pins the
//! design never reads (a 0.3 um pin square with no wire: the model uses only some bits of each
//! pixel), one a via's metal-1 landing left alone when qrouter removed a stacked via. The
//! patch is what sign-off flows do for these: paint the same metal to lengthen each shape
//! along its layer's routing direction until it has the minimum area. Adding metal cannot open
//! a net; a patch that came too close to a neighbour would be a spacing error in the DRC that
//! follows, and a short in the LVS, which both run on the patched layout.

use std::path::Path;

use crate::Error;

/// The Magic script file, in the layout folder.
pub const SCRIPT: &str = "min_area_patch.tcl";

/// The Magic script that loads `top` (after the cells' LEF), runs DRC, patches every
/// "MetalN area < A" error and saves the layout. Odd metal layers route horizontally in the
/// OSU libraries (qflow's .par), even ones vertically. It prints `patched = N`.
pub fn script(lef: &Path, top: &str) -> String {
    format!(
        r#"# flipchip: minimum-area patches (see asic/src/min_area.rs)
snap internal
lef read {lef}
load {top}
select top cell
expand
drc on
drc check
drc catchup
puts stdout "drc before patches = [drc list count total]"
# internal units per lambda, as a ratio
lassign [tech lambda] num den
set patched 0
foreach {{why boxes}} [drc listall why] {{
    if {{![regexp {{^Metal([0-9]+) area < ([0-9.]+)}} $why -> m need]}} {{ continue }}
    set need [expr {{$need * $num * $num / double($den * $den)}}]
    foreach b $boxes {{
        lassign $b x1 y1 x2 y2
        set w [expr {{$x2 - $x1}}]
        set h [expr {{$y2 - $y1}}]
        if {{$m % 2 == 1}} {{
            set grow [expr {{int(ceil(($need / double($h) - $w) / 2.0))}}]
            if {{$grow < 1}} {{ set grow 1 }}
            box values [expr {{$x1 - $grow}}] $y1 [expr {{$x2 + $grow}}] $y2
        }} else {{
            set grow [expr {{int(ceil(($need / double($w) - $h) / 2.0))}}]
            if {{$grow < 1}} {{ set grow 1 }}
            box values $x1 [expr {{$y1 - $grow}}] $x2 [expr {{$y2 + $grow}}]
        }}
        paint metal$m
        incr patched
    }}
}}
puts stdout "patched = $patched"
save {top}
quit
"#,
        lef = lef.display()
    )
}

/// `(DRC errors before, patches)` from the script's output.
pub fn report(log: &str, path: &Path) -> Result<(u64, u64), Error> {
    let find = |key: &str| {
        log.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(key)?.trim().parse().ok())
    };
    match (find("drc before patches ="), find("patched =")) {
        (Some(before), Some(patched)) => Ok((before, patched)),
        _ => Err(Error::Parse {
            path: path.to_path_buf(),
            message: "Magic's minimum-area patch script did not report its counts".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_reads_the_lef_first_and_saves_the_top() {
        let s = script(Path::new("/t/cells.lef"), "top");
        let lef = s.find("lef read /t/cells.lef").unwrap();
        let load = s.find("load top").unwrap();
        assert!(lef < load, "cells must be known before the layout loads");
        assert!(s.contains("save top\nquit\n"));
        assert!(s.contains("paint metal$m"));
    }

    #[test]
    fn the_counts_are_read_and_their_absence_is_an_error() {
        let log = "Loading\ndrc before patches = 5\npatched = 5\n";
        assert_eq!(report(log, Path::new("x.log")).unwrap(), (5, 5));
        let e = report("magic crashed", Path::new("x.log")).unwrap_err();
        assert!(e.to_string().contains("x.log"), "{e}");
    }
}
