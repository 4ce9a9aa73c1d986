//! Charts drawn on the server as SVG: no chart script in the browser, and the figures are in
//! the markup for screen readers (each bar has a title; the chart has a label).

use maud::{Markup, html};

/// Height of the drawing area, in SVG units.
const HEIGHT: i64 = 100;
/// Width of one bar's slot.
const SLOT: i64 = 10;

/// A bar chart of `values` (oldest first), each with a label for its tooltip.
pub fn bars(label: &str, values: &[(String, i64)]) -> Markup {
    let top = values.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let width = SLOT * i64::try_from(values.len()).unwrap_or(0).max(1);
    html! {
        svg.chart role="img" aria-label=(label) viewBox={ "0 0 " (width) " " (HEIGHT) }
            preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg" {
            line x1="0" y1=(HEIGHT) x2=(width) y2=(HEIGHT) {}
            @for (index, (name, value)) in values.iter().enumerate() {
                @let height = bar_height(*value, top);
                rect x=(i64::try_from(index).unwrap_or(0) * SLOT + 1) y=(HEIGHT - height)
                    width=(SLOT - 2) height=(height) {
                    title { (name) ": " (value) }
                }
            }
        }
        p.muted { "max " (top) }
    }
}

/// A bar's height, scaled so the largest value fills the drawing (integers only).
fn bar_height(value: i64, top: i64) -> i64 {
    value.clamp(0, top) * HEIGHT / top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_bar_fills_the_chart_and_labels_are_kept() {
        assert_eq!(bar_height(50, 50), HEIGHT);
        assert_eq!(bar_height(25, 50), HEIGHT / 2);
        assert_eq!(bar_height(-3, 50), 0);
        let svg = bars("Payments", &[("10:00".into(), 3), ("10:01".into(), 6)]).into_string();
        assert!(svg.contains("aria-label=\"Payments\""), "{svg}");
        assert!(svg.contains("<title>10:01: 6</title>"), "{svg}");
    }
}
