//! Charts drawn on the server as SVG: no script, no library, readable by screen readers through
//! their label (each chart also has its figures in a table beside it). Drawing uses `f64`;
//! every figure printed stays the exact decimal the engine computed.

use std::fmt::Write;

use super::html::escape;

const BAR_WIDTH: f64 = 320.0;

/// A bar of one budget: what is spent (dark), what is projected by month end (light), and the
/// budget (a mark); scaled so the largest of the three fills the bar. Whether the projection is
/// `over` the budget is the caller's exact answer, not one made in `f64`.
pub fn budget_bar(spent: f64, projected: f64, budget: f64, over: bool, label: &str) -> String {
    let top = spent.max(projected).max(budget).max(f64::MIN_POSITIVE);
    let x = |v: f64| (v / top * BAR_WIDTH).clamp(0.0, BAR_WIDTH);
    format!(
        "<svg class=\"bar\" width=\"{w}\" height=\"20\" viewBox=\"0 0 {w} 20\" role=\"img\" aria-label=\"{label}\">\
<rect x=\"0\" y=\"4\" width=\"{w}\" height=\"12\" class=\"track\"/>\
<rect x=\"0\" y=\"4\" width=\"{p:.1}\" height=\"12\" class=\"{pclass}\"/>\
<rect x=\"0\" y=\"4\" width=\"{s:.1}\" height=\"12\" class=\"spent\"/>\
<line x1=\"{b:.1}\" x2=\"{b:.1}\" y1=\"0\" y2=\"20\" class=\"budget\"/></svg>",
        w = BAR_WIDTH,
        label = escape(label),
        p = x(projected),
        pclass = if over { "projected over" } else { "projected" },
        s = x(spent),
        b = x(budget),
    )
}

/// A bar proportional to `value` of `top`, for a table cell.
pub fn share_bar(value: f64, top: f64) -> String {
    let width = if top > 0.0 {
        (value / top * 120.0).clamp(0.0, 120.0)
    } else {
        0.0
    };
    format!(
        "<svg class=\"share\" width=\"120\" height=\"10\" viewBox=\"0 0 120 10\" aria-hidden=\"true\"><rect x=\"0\" y=\"1\" width=\"{width:.1}\" height=\"8\"/></svg>"
    )
}

/// The burn-down of one budget over a month of `days` days: cumulative spend at the end of each
/// day so far (`spent`), a dashed projection from the last of them to `projected` at month end,
/// and the budget as a line.
pub fn burn_down(spent: &[f64], days: usize, projected: f64, budget: f64, label: &str) -> String {
    let (w, h, pad) = (360.0, 160.0, 28.0);
    let top = spent
        .iter()
        .copied()
        .fold(projected.max(budget), f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.05;
    let x = |day: f64| pad + day / days.max(1) as f64 * (w - 2.0 * pad);
    let y = |v: f64| h - pad - v / top * (h - 2.0 * pad);
    let mut points = format!("{:.1},{:.1}", x(0.0), y(0.0));
    for (i, v) in spent.iter().enumerate() {
        let _ = write!(points, " {:.1},{:.1}", x((i + 1) as f64), y(*v));
    }
    let last = spent.last().copied().unwrap_or(0.0);
    let mut svg = format!(
        "<svg class=\"burn\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
    let _ = write!(
        svg,
        "<line x1=\"{pad}\" x2=\"{pad}\" y1=\"{pad}\" y2=\"{b}\" class=\"axis\"/>\
<line x1=\"{pad}\" x2=\"{r}\" y1=\"{b}\" y2=\"{b}\" class=\"axis\"/>\
<line x1=\"{pad}\" x2=\"{r}\" y1=\"{by:.1}\" y2=\"{by:.1}\" class=\"budget\"/>\
<polyline points=\"{points}\" class=\"spent\"/>\
<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{ex:.1}\" y2=\"{ey:.1}\" class=\"projection\"/>\
<text x=\"{pad}\" y=\"{ty}\">day 1</text><text x=\"{r}\" y=\"{ty}\" text-anchor=\"end\">day {days}</text></svg>",
        b = h - pad,
        r = w - pad,
        by = y(budget),
        lx = x(spent.len() as f64),
        ly = y(last),
        ex = x(days as f64),
        ey = y(projected),
        ty = h - 8.0,
    );
    svg
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn charts_scale_to_their_largest_figure_and_carry_a_label() {
        let bar = budget_bar(50.0, 120.0, 100.0, true, "cc-1 <spent>");
        assert!(bar.contains("aria-label=\"cc-1 &lt;spent&gt;\""), "{bar}");
        assert!(
            bar.contains("width=\"320.0\" height=\"12\" class=\"projected over\""),
            "{bar}"
        );
        assert!(
            bar.contains("width=\"133.3\" height=\"12\" class=\"spent\""),
            "{bar}"
        );
        let burn = burn_down(&[10.0, 20.0], 30, 300.0, 250.0, "cc-1");
        assert!(
            burn.contains("<polyline points=\"28.0,132.0 38.1,"),
            "{burn}"
        );
        assert!(burn.contains("day 30"), "{burn}");
    }
}
