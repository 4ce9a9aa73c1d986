use super::*;
use crate::testing::fixtures::{merchant_id, other_merchant_id};
use crate::testing::given;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 instant")
}

fn month(year: i32, month: u32) -> IstMonth {
    IstMonth { year, month }
}

const FY26: FinancialYear = FinancialYear { first_year: 2026 };

/// 1 December 2026, 02:00 IST.
fn december_first() -> DateTime<Utc> {
    utc("2026-11-30T20:30:00Z")
}

fn number(sequence: u64) -> InvoiceNumber {
    InvoiceNumber {
        year: FY26,
        sequence,
    }
}

fn assigned(sequence: u64, merchant: MerchantId) -> InvoiceSeriesEvent {
    InvoiceSeriesEvent::InvoiceNumberAssigned {
        number: number(sequence),
        merchant_id: merchant,
        month: month(2026, 11),
        at: december_first(),
    }
}

fn assign(merchant: MerchantId) -> AssignNumber {
    AssignNumber {
        year: FY26,
        merchant_id: merchant,
        month: month(2026, 11),
        at: december_first(),
    }
}

fn figures(accrued: i64, reversed: i64) -> CommissionFigures {
    CommissionFigures {
        accrued: Paise(accrued),
        payments: 3,
        reversed: Paise(reversed),
    }
}

fn issue(
    sequence: u64,
    figures: CommissionFigures,
    taxes: Vec<TaxRate>,
) -> MerchantInvoicesCommand {
    MerchantInvoicesCommand::Issue(IssueInvoice {
        number: number(sequence),
        merchant_id: merchant_id(),
        company_name: "Asha Foods".into(),
        month: month(2026, 11),
        figures,
        taxes,
        at: december_first(),
    })
}

/// The events `command` decides on a new stream.
fn decided(command: MerchantInvoicesCommand) -> Vec<MerchantInvoicesEvent> {
    MerchantInvoices::decide(&MerchantInvoices::default(), &command).expect("decided")
}

fn gst() -> Vec<TaxRate> {
    vec![TaxRate {
        name: "IGST".into(),
        rate: BasisPoints(1_800),
    }]
}

#[test]
fn a_new_series_gives_number_one_and_then_the_next() {
    given::<InvoiceSeries>([])
        .when(assign(merchant_id()))
        .then([assigned(1, merchant_id())]);
    given::<InvoiceSeries>([assigned(1, merchant_id()), assigned(2, other_merchant_id())])
        .when(assign(merchant_id()))
        .then([assigned(3, merchant_id())]);
}

#[test]
fn a_series_numbers_only_invoices_dated_in_its_year() {
    // 1 April 2027 02:00 IST belongs to 2027-28, not 2026-27.
    let april = utc("2027-03-31T20:30:00Z");
    given::<InvoiceSeries>([])
        .when(AssignNumber {
            at: april,
            ..assign(merchant_id())
        })
        .then_error(InvoiceSeriesError::WrongYear {
            year: FY26,
            at: april,
        });
    let fy27 = FinancialYear { first_year: 2027 };
    given::<InvoiceSeries>([assigned(1, merchant_id())])
        .when(AssignNumber {
            year: fy27,
            at: april,
            ..assign(merchant_id())
        })
        .then_error(InvoiceSeriesError::WrongYear {
            year: fy27,
            at: april,
        });
}

#[test]
fn financial_years_run_april_to_march_in_ist() {
    assert_eq!(FinancialYear::of(utc("2027-03-31T18:29:59Z")), FY26);
    assert_eq!(
        FinancialYear::of(utc("2027-03-31T18:30:00Z")),
        FinancialYear { first_year: 2027 }
    );
    assert_eq!(FinancialYear::of_month(month(2026, 4)), FY26);
    assert_eq!(
        FinancialYear::of_month(month(2026, 3)),
        FinancialYear { first_year: 2025 }
    );
    assert_eq!(FY26.to_string(), "2026-27");
    assert_eq!(FinancialYear::parse("2026-27"), Some(FY26));
    assert_eq!(
        FinancialYear::parse("2099-00"),
        Some(FinancialYear { first_year: 2099 })
    );
    for bad in ["2026-28", "2026-2", "26-27", "2026/27", "", "abcd-ef"] {
        assert_eq!(FinancialYear::parse(bad), None, "{bad}");
    }
}

#[test]
fn invoice_numbers_read_back_and_refuse_anything_else() {
    assert_eq!(number(42).to_string(), "LS-2627-000042");
    assert_eq!(InvoiceNumber::parse("LS-2627-000042"), Some(number(42)));
    assert_eq!(
        InvoiceNumber::parse("LS-2627-1234567"),
        Some(number(1_234_567))
    );
    assert!(number(999_999).to_string().len() <= 16);
    for bad in [
        "LS-2627-42",
        "LS-2628-000042",
        "LS-2627-000000",
        "ls-2627-000042",
        "LS-2627-0000042",
        "LS-2627-00004a",
        "LS-262-000042",
        "",
        "LS-2627-000042.pdf",
    ] {
        assert_eq!(InvoiceNumber::parse(bad), None, "{bad}");
    }
}

#[test]
fn an_invoice_bills_the_months_commission_less_reversals_with_no_tax_by_default() {
    let state = given::<MerchantInvoices>([])
        .when(issue(7, figures(1_234_567, 4_567), Vec::new()))
        .then([MerchantInvoicesEvent::InvoiceIssued {
            invoice: Invoice {
                number: number(7),
                merchant_id: merchant_id(),
                company_name: "Asha Foods".into(),
                month: month(2026, 11),
                figures: figures(1_234_567, 4_567),
                taxable: Paise(1_230_000),
                taxes: Vec::new(),
                total: Paise(1_230_000),
                issued_at: december_first(),
            },
            at: december_first(),
        }]);
    assert_eq!(
        state.for_month(month(2026, 11)).map(|i| i.number),
        Some(number(7))
    );
    assert_eq!(
        state.by_number(number(7)).map(|i| i.total),
        Some(Paise(1_230_000))
    );
    assert_eq!(state.by_number(number(8)), None);
}

#[test]
fn each_tax_line_is_rounded_half_up_to_the_paisa_on_its_own() {
    // 18 % of ₹123.45 is 2 222.1 paise → 2 222; 9 % is 1 111.05 → 1 111, twice.
    let taxable = Paise(12_345);
    assert_eq!(
        tax_lines(taxable, &gst()),
        [TaxLine {
            name: "IGST".into(),
            rate: BasisPoints(1_800),
            amount: Paise(2_222)
        }]
    );
    let split = TaxRate::parse_list("CGST:900, SGST:900").expect("taxes");
    let lines = tax_lines(taxable, &split);
    assert_eq!(
        lines.iter().map(|l| l.amount).collect::<Vec<_>>(),
        [Paise(1_111), Paise(1_111)]
    );
    // 18 % of 25 paise is 4.5 → 5 (half-up).
    assert_eq!(tax_lines(Paise(25), &gst())[0].amount, Paise(5));
    let state = given::<MerchantInvoices>([])
        .when(issue(1, figures(12_345, 0), split))
        .then([MerchantInvoicesEvent::InvoiceIssued {
            invoice: Invoice {
                number: number(1),
                merchant_id: merchant_id(),
                company_name: "Asha Foods".into(),
                month: month(2026, 11),
                figures: figures(12_345, 0),
                taxable,
                taxes: lines,
                total: Paise(14_567),
                issued_at: december_first(),
            },
            at: december_first(),
        }]);
    assert_eq!(state.invoices().count(), 1);
}

#[test]
fn tax_settings_parse_or_say_why_not() {
    assert_eq!(TaxRate::parse_list(""), Ok(Vec::new()));
    assert_eq!(TaxRate::parse_list("IGST:1800"), Ok(gst()));
    for bad in [
        "IGST",
        "IGST:18%",
        "IGST:10001",
        ":1800",
        "A:1,B:1,C:1,D:1,E:1",
        "I<b>:1",
    ] {
        assert!(TaxRate::parse_list(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_month_is_invoiced_once() {
    let first = decided(issue(3, figures(10_000, 0), Vec::new()));
    given::<MerchantInvoices>(first)
        .when(issue(4, figures(10_000, 0), Vec::new()))
        .then_error(InvoiceError::AlreadyIssued {
            month: month(2026, 11),
            number: number(3),
        });
}

#[test]
fn a_month_without_net_commission_gets_no_invoice() {
    for (accrued, reversed) in [(0, 0), (500, 500), (500, 900)] {
        given::<MerchantInvoices>([])
            .when(issue(1, figures(accrued, reversed), Vec::new()))
            .then_error(InvoiceError::NothingToInvoice {
                month: month(2026, 11),
            });
    }
}

#[test]
fn a_number_from_another_years_series_is_refused() {
    let MerchantInvoicesCommand::Issue(mut wrong) = issue(1, figures(10_000, 0), Vec::new()) else {
        unreachable!("issue builds an Issue");
    };
    wrong.number.year = FinancialYear { first_year: 2025 };
    given::<MerchantInvoices>([])
        .when(MerchantInvoicesCommand::Issue(wrong))
        .then_error(InvoiceError::Invalid(
            "LS-2526-000001 is not in the financial year of its date".into(),
        ));
}

#[test]
fn the_invoice_address_is_set_once_checked_and_removed() {
    let at = december_first();
    let set = MerchantInvoicesEvent::InvoiceEmailChanged {
        email: Some("billing@asha.example".into()),
        at,
    };
    let state = given::<MerchantInvoices>([])
        .when(MerchantInvoicesCommand::SetEmail {
            email: Some(" billing@asha.example ".into()),
            at,
        })
        .then([set.clone()]);
    assert_eq!(state.email(), Some("billing@asha.example"));
    given::<MerchantInvoices>([set.clone()])
        .when(MerchantInvoicesCommand::SetEmail {
            email: Some("billing@asha.example".into()),
            at,
        })
        .then_nothing();
    given::<MerchantInvoices>([set])
        .when(MerchantInvoicesCommand::SetEmail { email: None, at })
        .then([MerchantInvoicesEvent::InvoiceEmailChanged { email: None, at }]);
    for bad in [
        "billing",
        "a@b",
        "a b@c.example",
        "a@c.example\r\nBcc: x@y.z",
        "<a@b.example>",
    ] {
        given::<MerchantInvoices>([])
            .when(MerchantInvoicesCommand::SetEmail {
                email: Some(bad.into()),
                at,
            })
            .then_error(InvoiceError::InvalidEmail);
    }
}

#[test]
fn mailing_is_recorded_once_and_only_for_an_invoice_of_the_merchant() {
    let issued = decided(issue(5, figures(10_000, 0), Vec::new()));
    let at = december_first();
    let mailed = MerchantInvoicesEvent::InvoiceMailed {
        number: number(5),
        to: "billing@asha.example".into(),
        at,
    };
    let record = MerchantInvoicesCommand::RecordMailed {
        number: number(5),
        to: "billing@asha.example".into(),
        at,
    };
    let state = given::<MerchantInvoices>(issued.clone())
        .when(record.clone())
        .then([mailed.clone()]);
    assert_eq!(state.mailed_at(number(5)), Some(at));
    given::<MerchantInvoices>(issued.into_iter().chain([mailed]))
        .when(record)
        .then_nothing();
    given::<MerchantInvoices>([])
        .when(MerchantInvoicesCommand::RecordMailed {
            number: number(6),
            to: "billing@asha.example".into(),
            at,
        })
        .then_error(InvoiceError::UnknownInvoice(number(6)));
}

#[test]
fn months_parse_and_step_back() {
    assert_eq!(parse_month("2026-11"), Some(month(2026, 11)));
    for bad in [
        "2026-13", "2026-00", "2026-1", "26-11", "2026/11", "+026-11", "",
    ] {
        assert_eq!(parse_month(bad), None, "{bad}");
    }
    assert_eq!(previous_month(month(2027, 1)), month(2026, 12));
    assert_eq!(previous_month(month(2026, 12)), month(2026, 11));
    assert_eq!(ist_date(december_first()), "2026-12-01");
}
