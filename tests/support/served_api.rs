//! `lightspeed serve` as its own process on the world's database, so what it holds in memory
//! is measured apart from the test (`/proc/<pid>/status`), and merchant requests signed for it.

use lightspeed_adapters::merchant_auth::sign_request;
use lightspeed_api::testing::TestMerchant;
use tokio::process::Child;

use super::{World, wait_for};

/// The API served by a child process.
pub struct ServedApi {
    /// The process (killed when dropped).
    pub process: Child,
    /// Its process id.
    pub pid: u32,
    /// Where it listens, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// A client for it.
    pub http: reqwest::Client,
}

/// What a process holds in memory, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub resident: u64,
    /// The most it was ever resident (`VmHWM`).
    pub peak: u64,
}

impl World {
    /// Starts `lightspeed serve` on a free loopback port and waits until it answers `/health`.
    pub async fn served_api(&self) -> ServedApi {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            probe.local_addr().expect("addr").port()
        };
        let listen = format!("127.0.0.1:{port}");
        let process = self.process("api", &["serve", "--listen", &listen]);
        let pid = process.id().expect("running");
        let api = ServedApi {
            process,
            pid,
            url: format!("http://{listen}"),
            http: reqwest::Client::new(),
        };
        wait_for("the API process to answer /health", || async {
            let answer = api.http.get(format!("{}/health", api.url)).send().await;
            answer.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
        api
    }
}

impl ServedApi {
    /// A `GET` of `path_and_query` signed as `merchant`.
    pub fn signed_get(
        &self,
        merchant: &TestMerchant,
        path_and_query: &str,
    ) -> reqwest::RequestBuilder {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign_request(
            merchant.client_salt.expose(),
            timestamp,
            "GET",
            path_and_query,
            b"",
        );
        self.http
            .get(format!("{}{path_and_query}", self.url))
            .header("x-client-key", &merchant.client_key)
            .header("x-timestamp", timestamp.to_string())
            .header("x-signature", signature)
    }

    /// The process's memory now.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("the API process's status");
        let kib = |field: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{field} in /proc/<pid>/status"))
        };
        Memory {
            resident: kib("VmRSS:"),
            peak: kib("VmHWM:"),
        }
    }
}
