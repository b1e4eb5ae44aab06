//! Charts as inline SVG, drawn on the server from counts: a sparkline, bars and lines.
//! The markup holds only numbers and the labels given here (dates and hours formatted by
//! this module), so it is passed to the templates as safe HTML.

use std::fmt::Write;
use time::OffsetDateTime;

/// One series of a chart: its CSS class (its colour) and its values.
pub struct Line<'a> {
    pub class: &'static str,
    pub label: &'static str,
    pub values: &'a [u64],
}

fn max(values: impl IntoIterator<Item = u64>) -> u64 {
    values.into_iter().max().unwrap_or(0).max(1)
}

/// A small line of daily counts, for the overview's tables.
pub fn sparkline(values: &[u64]) -> String {
    let (w, h) = (120.0, 24.0);
    let top = max(values.iter().copied()) as f64;
    let step = if values.len() > 1 { w / (values.len() - 1) as f64 } else { w };
    let mut points = String::new();
    for (i, v) in values.iter().enumerate() {
        let _ = write!(points, "{:.1},{:.1} ", i as f64 * step, h - 2.0 - (*v as f64 / top) * (h - 4.0));
    }
    let total: u64 = values.iter().sum();
    format!(
        r#"<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{total} in {n} days"><title>{total} in {n} days</title><polyline points="{}" fill="none"/></svg>"#,
        points.trim_end(),
        n = values.len()
    )
}

const W: f64 = 720.0;
const H: f64 = 160.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;

fn frame(svg: &mut String, top: u64, first: &str, last: &str) {
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{b}" x2="{W}" y2="{b}"/><text x="{x}" y="12" text-anchor="end">{top}</text><text x="{x}" y="{b}" text-anchor="end">0</text><text x="{LEFT}" y="{H}">{first}</text><text x="{W}" y="{H}" text-anchor="end">{last}</text>"#,
        b = H - BOTTOM,
        x = LEFT - 4.0,
    );
}

fn open(label: &str) -> String {
    format!(r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{label}"><title>{label}</title>"#)
}

/// Counts per hour as bars, one series over another (e.g. failures over tries).
pub fn bars(label: &str, hours: &[OffsetDateTime], series: &[Line<'_>]) -> String {
    let top = max(series.iter().flat_map(|s| s.values.iter().copied()));
    let n = hours.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let mut svg = open(label);
    let hour = |t: &OffsetDateTime| format!("{:02}:00", t.hour());
    frame(&mut svg, top, &hours.first().map(hour).unwrap_or_default(), &hours.last().map(hour).unwrap_or_default());
    for s in series {
        for (i, v) in s.values.iter().enumerate() {
            let height = (*v as f64 / top as f64) * (H - BOTTOM - 16.0);
            let at = hours.get(i).map(hour).unwrap_or_default();
            let _ = write!(
                svg,
                r#"<rect class="{c}" x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{height:.1}"><title>{at}: {v} {l}</title></rect>"#,
                c = s.class,
                x = LEFT + i as f64 * slot + 1.0,
                y = H - BOTTOM - height,
                bw = (slot - 2.0).max(1.0),
                l = s.label,
            );
        }
    }
    svg.push_str(&legend(series));
    svg.push_str("</svg>");
    svg
}

/// Counts per day as lines.
pub fn lines(label: &str, days: &[OffsetDateTime], series: &[Line<'_>]) -> String {
    let top = max(series.iter().flat_map(|s| s.values.iter().copied()));
    let n = days.len().saturating_sub(1).max(1) as f64;
    let step = (W - LEFT) / n;
    let mut svg = open(label);
    let day = |t: &OffsetDateTime| t.date().to_string();
    frame(&mut svg, top, &days.first().map(day).unwrap_or_default(), &days.last().map(day).unwrap_or_default());
    for s in series {
        let mut points = String::new();
        for (i, v) in s.values.iter().enumerate() {
            let y = H - BOTTOM - (*v as f64 / top as f64) * (H - BOTTOM - 16.0);
            let _ = write!(points, "{:.1},{:.1} ", LEFT + i as f64 * step, y);
        }
        let _ = write!(svg, r#"<polyline class="{}" points="{}" fill="none"/>"#, s.class, points.trim_end());
    }
    svg.push_str(&legend(series));
    svg.push_str("</svg>");
    svg
}

fn legend(series: &[Line<'_>]) -> String {
    let mut out = String::new();
    for (i, s) in series.iter().enumerate() {
        let x = LEFT + 8.0 + i as f64 * 110.0;
        let _ = write!(
            out,
            r#"<rect class="{c}" x="{x}" y="4" width="10" height="10"/><text x="{tx}" y="13">{l}</text>"#,
            c = s.class,
            tx = x + 14.0,
            l = s.label,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_sparkline_has_a_point_per_day_and_says_its_total() {
        let svg = sparkline(&[0, 3, 1, 0]);
        assert_eq!(svg.matches(',').count(), 4);
        assert!(svg.contains("<title>4 in 4 days</title>"), "{svg}");
        assert!(sparkline(&[]).contains("0 in 0 days"));
    }

    #[test]
    fn bars_scale_to_the_largest_count_and_name_each_hour() {
        let hours = [datetime!(2026-12-06 10:00 UTC), datetime!(2026-12-06 11:00 UTC)];
        let svg = bars("tries", &hours, &[Line { class: "a", label: "tries", values: &[2, 4] }]);
        assert!(svg.contains("<title>11:00: 4 tries</title>"), "{svg}");
        assert!(svg.contains(&format!(r#"height="{:.1}""#, H - BOTTOM - 16.0)));
    }
}
