//! Monthly invoices on the API: the admin routes (books readers only; the address is a merchant
//! change) and the signed merchant routes, each merchant seeing only its own; the PDF read back
//! by poppler's `pdftotext`.

use lightspeed_domain::access::Role;
use lightspeed_domain::invoice::TaxRate;
use lightspeed_domain::wallet::{Wallet, WalletCommand};
use lightspeed_domain::{BasisPoints, MerchantId, Paise, PaymentId};
use lightspeed_eventstore::{CommandContext, stream_of};
use lightspeed_services::{Invoicing, IssueOutcome};
use lightspeed_workers::invoice_schedule::{InvoiceSchedule, billed_month};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, TestMerchant, problem, spawn_app};

async fn accrue(app: &TestApp, merchant: MerchantId, amount: i64) {
    let fee = BasisPoints::DEFAULT_FEE;
    app.ledger
        .wallets()
        .execute(
            &stream_of::<Wallet>(merchant).expect("stream"),
            &WalletCommand::AccrueCommission {
                payment_id: PaymentId::new(),
                amount: Paise(amount),
                fee,
                commission: fee.of(Paise(amount)),
                at: app.ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("accrued");
}

/// Issues this month's invoice of each merchant as the run on the 1st next month would.
async fn issue(app: &TestApp, merchants: &[&TestMerchant]) -> Vec<String> {
    let due = InvoiceSchedule::default().next_after(app.ledger.now());
    let invoicing = Invoicing::new(
        app.ledger.clone(),
        TaxRate::parse_list("IGST:1800").expect("taxes"),
    );
    let mut numbers = Vec::new();
    for merchant in merchants {
        let outcome = invoicing
            .issue(
                merchant.id,
                billed_month(due),
                due,
                &CommandContext::default(),
            )
            .await
            .expect("issued");
        let IssueOutcome::Issued(invoice) = outcome else {
            panic!("expected an issue, got {outcome:?}");
        };
        numbers.push(invoice.number.to_string());
    }
    numbers
}

async fn signed_get(app: &TestApp, merchant: &TestMerchant, path: &str) -> reqwest::Response {
    app.signed(merchant, Method::GET, path, b"")
        .send()
        .await
        .expect("request")
}

async fn as_role(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .http
        .request(method, format!("{}{path}", app.url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

async fn invite(app: &TestApp, email: &str, role: Role) -> String {
    let response = app
        .admin_json(
            Method::POST,
            "/admin/people",
            &json!({ "email": email, "role": role.as_str() }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    app.role_token(email, role)
}

fn pdftotext(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("api-invoice-{}.pdf", uuid::Uuid::now_v7()));
    std::fs::write(&path, pdf).expect("written");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs (Debian's poppler-utils)");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("UTF-8")
}

async fn pdf_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .expect("disposition")
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"LS-"),
        "{disposition}"
    );
    let bytes = response.bytes().await.expect("body");
    pdftotext(&bytes)
}

#[tokio::test]
async fn a_merchant_reads_and_downloads_its_own_invoices_and_no_one_elses() {
    let app = spawn_app().await;
    let asha = app.merchant().await;
    let ravi = app.merchant().await;
    accrue(&app, asha.id, 1_234_567).await;
    accrue(&app, ravi.id, 50_000).await;
    let numbers = issue(&app, &[&asha, &ravi]).await;
    let (mine, theirs) = (&numbers[0], &numbers[1]);

    let list: Value = signed_get(&app, &asha, "/invoices")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["merchant_id"], asha.id.0.to_string());
    let invoices = list["invoices"].as_array().expect("invoices");
    assert_eq!(invoices.len(), 1, "{list}");
    assert_eq!(invoices[0]["number"], mine.as_str());
    // 3.5 % of ₹12,345.67 = 43 209.845 → 43 210 paise; 18 % IGST = 7 777.8 → 7 778.
    assert_eq!(invoices[0]["commission_accrued_paise"], 43_210);
    assert_eq!(invoices[0]["taxes"][0]["amount_paise"], 7_778);
    assert_eq!(invoices[0]["total_paise"], 50_988);
    assert_eq!(invoices[0]["pdf"], format!("/invoices/{mine}.pdf"));

    let by_accept = app
        .signed(&asha, Method::GET, &format!("/invoices/{mine}"), b"")
        .header("accept", "application/pdf")
        .send()
        .await
        .expect("request");
    assert!(pdf_of(by_accept).await.contains(&format!("Invoice {mine}")));
    let one: Value = signed_get(&app, &asha, &format!("/invoices/{mine}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(one["number"], mine.as_str());
    let text = pdf_of(signed_get(&app, &asha, &format!("/invoices/{mine}.pdf")).await).await;
    for expected in [
        format!("Invoice {mine}"),
        "₹432.10".to_owned(),
        "IGST @ 18.00%".to_owned(),
        "₹77.78".to_owned(),
        "₹509.88".to_owned(),
        format!("Merchant {}", asha.id),
    ] {
        assert!(
            text.contains(&expected),
            "{expected:?} missing from:\n{text}"
        );
    }

    // Another merchant's number is as unknown as a made-up one.
    for path in [
        format!("/invoices/{theirs}"),
        format!("/invoices/{theirs}.pdf"),
        "/invoices/LS-2627-999999.pdf".to_owned(),
        "/invoices/not-a-number".to_owned(),
        "/invoices/LS-2627-000001.html".to_owned(),
    ] {
        let (status, body) = problem(signed_get(&app, &asha, &path).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("INVOICE_NOT_FOUND")),
            "{path}"
        );
    }
    let theirs_list: Value = signed_get(&app, &ravi, "/invoices")
        .await
        .json()
        .await
        .expect("json");
    let numbers: Vec<&str> = theirs_list["invoices"]
        .as_array()
        .expect("invoices")
        .iter()
        .filter_map(|i| i["number"].as_str())
        .collect();
    assert_eq!(numbers, [theirs.as_str()]);
    // Unsigned, the route answers 401.
    let unsigned = app
        .http
        .get(format!("{}/invoices", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_books_roles_read_invoices_and_only_a_merchant_manager_sets_the_address() {
    let app = spawn_app().await;
    let asha = app.merchant().await;
    accrue(&app, asha.id, 100_000).await;
    let numbers = issue(&app, &[&asha]).await;
    let number = &numbers[0];
    let list_path = format!("/admin/merchants/{}/invoices", asha.id);
    let pdf_path = format!("/admin/invoices/{number}.pdf");

    let admin = app.admin_token();
    let finance = invite(&app, "meera-finance@example.com", Role::Finance).await;
    let auditor = invite(&app, "kiran-auditor@example.com", Role::Auditor).await;
    let ops = invite(&app, "dev-ops-person@example.com", Role::Ops).await;
    for token in [&admin, &finance, &auditor] {
        let list: Value = as_role(&app, token, Method::GET, &list_path, None)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(list["invoices"][0]["number"], number.as_str(), "{list}");
        assert_eq!(list["invoices"][0]["pdf"], pdf_path);
        let text = pdf_of(as_role(&app, token, Method::GET, &pdf_path, None).await).await;
        assert!(text.contains(&format!("Invoice {number}")), "{text}");
        assert!(text.contains("₹35.00"), "{text}");
    }
    let json: Value = as_role(
        &app,
        &auditor,
        Method::GET,
        &format!("/admin/invoices/{number}"),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(json["merchant_id"], asha.id.0.to_string());
    for path in [&list_path, &pdf_path] {
        let (status, body) = problem(as_role(&app, &ops, Method::GET, path, None).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("ROLE_FORBIDDEN")),
            "{path}"
        );
    }
    for path in [
        "/admin/invoices/LS-2627-999999.pdf".to_owned(),
        "/admin/invoices/nope".to_owned(),
    ] {
        let (status, body) = problem(as_role(&app, &admin, Method::GET, &path, None).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("INVOICE_NOT_FOUND"))
        );
    }
    let (status, _) = problem(
        as_role(
            &app,
            &admin,
            Method::GET,
            &format!("/admin/merchants/{}/invoices", MerchantId::new()),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let email_path = format!("/admin/merchants/{}/invoice-email", asha.id);
    let body = json!({ "email": "billing@asha.example" });
    let (status, refused) =
        problem(as_role(&app, &finance, Method::PUT, &email_path, Some(body.clone())).await).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("ROLE_FORBIDDEN"))
    );
    let set: Value = as_role(&app, &admin, Method::PUT, &email_path, Some(body))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(set["email"], "billing@asha.example");
    let (status, bad) = problem(
        as_role(
            &app,
            &admin,
            Method::PUT,
            &email_path,
            Some(json!({ "email": "not an address" })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_FIELD"))
    );
    let cleared: Value = as_role(
        &app,
        &admin,
        Method::PUT,
        &email_path,
        Some(json!({ "email": null })),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(cleared["email"], Value::Null);
}
