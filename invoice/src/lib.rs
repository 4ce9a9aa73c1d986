//! Renders one monthly commission invoice ([`lightspeed_domain::invoice::Invoice`]) as a PDF.
//!
//! One job: figures in, PDF bytes out. No I/O, no clock: the same invoice renders to the same
//! bytes, so an invoice is stored once, as the event that issued it, and its PDF is made again
//! whenever it is downloaded or mailed.
//!
//! Text is set in DejaVu Sans (`fonts/DejaVuSans.ttf`, Bitstream Vera licence with DejaVu's
//! public-domain changes, `fonts/LICENSE-DejaVu.txt`), which draws ₹ (U+20B9). The font is
//! embedded as a CID font subset to the glyphs the invoice uses, with a `ToUnicode` map, so a
//! reader (or `pdftotext`) gets the text back, ₹ included.
//!
//! Amounts are formatted from integer paise with Indian digit grouping (`₹12,34,567.89`); only
//! page coordinates are floating point.

use std::collections::BTreeMap;

use chrono::Month;
use lightspeed_domain::Paise;
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::invoice::{Invoice, ist_date};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// The embedded face: DejaVu Sans 2.37.
const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
/// The font's name in the PDF (a subset is tagged with six capitals, as PDF asks).
const FONT_NAME: &[u8] = b"LSINVC+DejaVuSans";
/// A4 in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
/// Longest text drawn on one line, in characters (a company name may be 200).
const MAX_LINE_CHARS: usize = 90;

/// Who issues the invoice: a name and a few lines under it (address, GSTIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seller {
    /// e.g. `LightSpeed Payments`.
    pub name: String,
    /// Lines printed under the name, at most a few.
    pub lines: Vec<String>,
}

impl Default for Seller {
    fn default() -> Self {
        Self {
            name: "LightSpeed Payments".to_owned(),
            lines: Vec::new(),
        }
    }
}

/// Why an invoice could not be rendered (a broken embedded font: a bug, never the input).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The embedded font did not parse.
    #[error("the embedded font does not parse: {0}")]
    Font(String),
    /// The font could not be subset.
    #[error("the embedded font could not be subset: {0}")]
    Subset(String),
}

/// The file name an invoice is downloaded and attached as: `LS-2627-000042.pdf`.
pub fn file_name(invoice: &Invoice) -> String {
    format!("{}.pdf", invoice.number)
}

/// `₹12,34,567.89`: rupees with Indian digit grouping (lakh, crore), from integer paise.
pub fn rupees(amount: Paise) -> String {
    let sign = if amount.0 < 0 { "−" } else { "" };
    let abs = amount.0.unsigned_abs();
    let (whole, paise) = (abs / 100, abs % 100);
    let digits = whole.to_string();
    let grouped = if digits.len() <= 3 {
        digits
    } else {
        let (head, last3) = digits.split_at(digits.len() - 3);
        let mut groups: Vec<&str> = Vec::new();
        let mut rest = head;
        while rest.len() > 2 {
            let (left, right) = rest.split_at(rest.len() - 2);
            groups.push(right);
            rest = left;
        }
        groups.push(rest);
        groups.reverse();
        format!("{},{last3}", groups.join(","))
    };
    format!("{sign}₹{grouped}.{paise:02}")
}

/// `November 2026`.
pub fn month_name(month: IstMonth) -> String {
    let name = u8::try_from(month.month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .map_or("?", |m| m.name());
    format!("{name} {}", month.year)
}

/// One line of text to set: where, how big, what.
struct Line {
    x: f32,
    y: f32,
    size: f32,
    text: String,
    /// Right-aligned at `x` instead of starting there.
    right: bool,
}

/// The invoice as a PDF document.
pub fn render(invoice: &Invoice, seller: &Seller) -> Result<Vec<u8>, RenderError> {
    let face = ttf_parser::Face::parse(FONT, 0).map_err(|e| RenderError::Font(e.to_string()))?;
    let lines = layout(invoice, seller, &face);
    let rules = rules(invoice);
    write_pdf(invoice, &face, &lines, &rules)
}

/// Horizontal rules under the header and around the totals: (y, from x, to x).
fn rules(invoice: &Invoice) -> Vec<(f32, f32, f32)> {
    let table_top = 560.0;
    let total_y = table_top - 22.0 * (4 + invoice.taxes.len()) as f32;
    vec![
        (700.0, MARGIN, PAGE_WIDTH - MARGIN),
        (table_top - 6.0, MARGIN, PAGE_WIDTH - MARGIN),
        (total_y + 16.0, MARGIN, PAGE_WIDTH - MARGIN),
    ]
}

fn layout(invoice: &Invoice, seller: &Seller, face: &ttf_parser::Face<'_>) -> Vec<Line> {
    let left = MARGIN;
    let right = PAGE_WIDTH - MARGIN;
    let mut lines = Vec::new();
    let mut text = |x: f32, y: f32, size: f32, text: String, right: bool| {
        lines.push(Line {
            x,
            y,
            size,
            text: clip(&text),
            right,
        });
    };
    let title = if invoice.taxes.is_empty() {
        "Invoice"
    } else {
        "Tax invoice"
    };
    text(left, 780.0, 20.0, title.to_owned(), false);
    text(left, 756.0, 11.0, seller.name.clone(), false);
    for (i, line) in seller.lines.iter().take(3).enumerate() {
        text(left, 742.0 - 13.0 * i as f32, 9.0, line.clone(), false);
    }
    text(
        right,
        780.0,
        11.0,
        format!("Invoice {}", invoice.number),
        true,
    );
    text(
        right,
        764.0,
        9.0,
        format!("Date {} (IST)", ist_date(invoice.issued_at)),
        true,
    );
    text(
        right,
        750.0,
        9.0,
        format!("Financial year {}", invoice.number.year),
        true,
    );

    text(left, 680.0, 9.0, "Billed to".to_owned(), false);
    text(left, 664.0, 12.0, invoice.company_name.clone(), false);
    text(
        left,
        649.0,
        9.0,
        format!("Merchant {}", invoice.merchant_id),
        false,
    );
    text(
        left,
        620.0,
        11.0,
        format!(
            "Commission for {} ({}, India Standard Time)",
            month_name(invoice.month),
            invoice.month
        ),
        false,
    );

    let table_top = 560.0;
    text(left, table_top + 6.0, 9.0, "Description".to_owned(), false);
    text(right, table_top + 6.0, 9.0, "Amount".to_owned(), true);
    let mut rows: Vec<(String, String)> = vec![
        (
            format!(
                "Commission accrued on {} payment{}",
                invoice.figures.payments,
                if invoice.figures.payments == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            rupees(invoice.figures.accrued),
        ),
        (
            "Less commission reversed by refunds".to_owned(),
            rupees(Paise::ZERO.saturating_sub(invoice.figures.reversed)),
        ),
        ("Taxable value".to_owned(), rupees(invoice.taxable)),
    ];
    for tax in &invoice.taxes {
        rows.push((format!("{} @ {}", tax.name, tax.rate), rupees(tax.amount)));
    }
    for (i, (label, amount)) in rows.into_iter().enumerate() {
        let y = table_top - 24.0 - 22.0 * i as f32;
        text(left, y, 10.0, label, false);
        text(right, y, 10.0, amount, true);
    }
    let total_y = table_top - 22.0 * (4 + invoice.taxes.len()) as f32 - 6.0;
    text(left, total_y, 12.0, "Total due".to_owned(), false);
    text(right, total_y, 12.0, rupees(invoice.total), true);

    let notes = [
        "Amounts in Indian rupees. Taxable value: commission accrued in the month".to_owned(),
        "less commission reversed by refunds in the month.".to_owned(),
        "Each tax line is the taxable value times its rate, rounded half-up to the paisa."
            .to_owned(),
        format!(
            "From the commission statement of {} in the ledger's event log.",
            invoice.month
        ),
    ];
    for (i, note) in notes.into_iter().enumerate() {
        text(left, 132.0 - 12.0 * i as f32, 7.5, note, false);
    }

    // Right-aligned text starts where its width says.
    for line in &mut lines {
        if line.right {
            line.x -= width(face, &line.text, line.size);
        }
    }
    lines
}

/// `text` cut to [`MAX_LINE_CHARS`], with `…` when cut; control characters dropped.
fn clip(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() <= MAX_LINE_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_LINE_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn glyph(face: &ttf_parser::Face<'_>, c: char) -> u16 {
    face.glyph_index(c).map_or(0, |g| g.0)
}

/// Width of `text` at `size` points.
fn width(face: &ttf_parser::Face<'_>, text: &str, size: f32) -> f32 {
    let units = f32::from(face.units_per_em());
    text.chars()
        .map(|c| {
            face.glyph_hor_advance(ttf_parser::GlyphId(glyph(face, c)))
                .map_or(0.0, f32::from)
        })
        .sum::<f32>()
        * size
        / units
}

fn write_pdf(
    invoice: &Invoice,
    face: &ttf_parser::Face<'_>,
    lines: &[Line],
    rules: &[(f32, f32, f32)],
) -> Result<Vec<u8>, RenderError> {
    // Glyphs used, renumbered for the subset (glyph 0, .notdef, stays 0).
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut to_unicode: BTreeMap<u16, char> = BTreeMap::new();
    let encoded: Vec<Vec<u8>> = lines
        .iter()
        .map(|line| {
            line.text
                .chars()
                .flat_map(|c| {
                    let new = remapper.remap(glyph(face, c));
                    to_unicode.entry(new).or_insert(c);
                    new.to_be_bytes()
                })
                .collect()
        })
        .collect();
    let subset =
        subsetter::subset(FONT, 0, &remapper).map_err(|e| RenderError::Subset(format!("{e:?}")))?;
    let units = f32::from(face.units_per_em());
    let widths: Vec<f32> = remapper
        .remapped_gids()
        .map(|old| {
            face.glyph_hor_advance(ttf_parser::GlyphId(old))
                .map_or(0.0, |w| f32::from(w) * 1000.0 / units)
        })
        .collect();

    let catalog_id = Ref::new(1);
    let pages_id = Ref::new(2);
    let page_id = Ref::new(3);
    let content_id = Ref::new(4);
    let font_id = Ref::new(5);
    let cid_id = Ref::new(6);
    let descriptor_id = Ref::new(7);
    let file_id = Ref::new(8);
    let cmap_id = Ref::new(9);
    let info_id = Ref::new(10);
    let font_name = Name(b"F1");

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(pages_id);
    pdf.pages(pages_id).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
    page.parent(pages_id);
    page.contents(content_id);
    page.resources().fonts().pair(font_name, font_id);
    page.finish();
    let title = format!("Invoice {} · {}", invoice.number, invoice.company_name);
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .producer(TextStr("LightSpeed ledger"));

    pdf.type0_font(font_id)
        .base_font(Name(FONT_NAME))
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_id)
        .to_unicode(cmap_id);
    let system_info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    let mut cid = pdf.cid_font(cid_id);
    cid.subtype(CidFontType::Type2)
        .base_font(Name(FONT_NAME))
        .system_info(system_info)
        .font_descriptor(descriptor_id)
        .default_width(0.0)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    cid.widths().consecutive(0, widths);
    cid.finish();

    let scale = |v: i16| f32::from(v) * 1000.0 / units;
    let bbox = face.global_bounding_box();
    pdf.font_descriptor(descriptor_id)
        .name(Name(FONT_NAME))
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(
            scale(bbox.x_min),
            scale(bbox.y_min),
            scale(bbox.x_max),
            scale(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(scale(face.ascender()))
        .descent(scale(face.descender()))
        .cap_height(scale(face.capital_height().unwrap_or(face.ascender())))
        .stem_v(80.0)
        .font_file2(file_id);
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&subset, 6);
    pdf.stream(file_id, &compressed)
        .filter(Filter::FlateDecode)
        .pair(
            Name(b"Length1"),
            i32::try_from(subset.len()).unwrap_or(i32::MAX),
        );

    let mut cmap = pdf_writer::types::UnicodeCmap::new(Name(b"LightSpeed-UTF16"), system_info);
    for (gid, c) in &to_unicode {
        cmap.pair(*gid, *c);
    }
    pdf.stream(cmap_id, &cmap.finish());

    let mut content = Content::new();
    content.set_line_width(0.6);
    for (y, from, to) in rules {
        content.move_to(*from, *y);
        content.line_to(*to, *y);
    }
    content.stroke();
    for (line, bytes) in lines.iter().zip(&encoded) {
        content.begin_text();
        content.set_font(font_name, line.size);
        content.next_line(line.x, line.y);
        content.show(Str(bytes));
        content.end_text();
    }
    let content = miniz_oxide::deflate::compress_to_vec_zlib(&content.finish(), 6);
    pdf.stream(content_id, &content).filter(Filter::FlateDecode);
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupees_use_indian_grouping_from_integer_paise() {
        assert_eq!(rupees(Paise(0)), "₹0.00");
        assert_eq!(rupees(Paise(5)), "₹0.05");
        assert_eq!(rupees(Paise(99_999)), "₹999.99");
        assert_eq!(rupees(Paise(100_000)), "₹1,000.00");
        assert_eq!(rupees(Paise(123_456_789)), "₹12,34,567.89");
        assert_eq!(rupees(Paise(10_000_000_000)), "₹10,00,00,000.00");
        assert_eq!(rupees(Paise(-4_567)), "−₹45.67");
    }

    #[test]
    fn months_are_named() {
        assert_eq!(
            month_name(IstMonth {
                year: 2026,
                month: 11
            }),
            "November 2026"
        );
    }

    #[test]
    fn long_text_is_clipped() {
        let long = "x".repeat(300);
        assert_eq!(clip(&long).chars().count(), MAX_LINE_CHARS);
        assert_eq!(clip("a\r\nb"), "ab");
    }
}
