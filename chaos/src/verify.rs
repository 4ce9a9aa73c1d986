//! The checks that ask the product itself: the auditor's commands, a rebuild of every read
//! model, and the JetStream copy of the log read back message by message.

use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures::StreamExt;
use lightspeed_eventstore::nats::position_of;
use lightspeed_projections::compare::differences;
use lightspeed_projections::progress::Silent;
use lightspeed_projections::{
    ProjectorDeps, RebuildOptions, catalog, rebuild_projection, versions,
};

use crate::checks::Check;
use crate::facts::LogFacts;
use crate::roles::Roles;
use crate::site::Site;

/// Longest the run waits for the next message of the stream.
const NEXT_MESSAGE: Duration = Duration::from_secs(10);
/// Problems listed in full per check; the rest are counted.
const SHOWN: usize = 5;

/// `lightspeed audit verify --db` and `lightspeed audit commission --db` exit clean; their
/// output is kept in the run's directory.
pub async fn audit(roles: &Roles, dir: &std::path::Path) -> Vec<Check> {
    let mut checks = Vec::new();
    for (name, args, file) in [
        (
            "lightspeed audit verify --db is clean",
            ["audit", "verify", "--db"],
            "audit-verify.txt",
        ),
        (
            "lightspeed audit commission --db is clean",
            ["audit", "commission", "--db"],
            "audit-commission.txt",
        ),
    ] {
        let problems = match roles.command("audit", &args).output().await {
            Ok(output) => {
                let text = [output.stdout, output.stderr].concat();
                let _ = std::fs::write(dir.join(file), &text);
                if output.status.success() {
                    Vec::new()
                } else {
                    vec![format!("exited with {} (see {file})", output.status)]
                }
            }
            Err(e) => vec![format!("did not run: {e}")],
        };
        checks.push(Check::new(name, problems));
    }
    checks
}

/// Every read model equals a rebuild of it from the log, row for row.
pub async fn read_models(site: &Site) -> Check {
    let mut problems = Vec::new();
    let deps = ProjectorDeps {
        store: site.ledger.store().clone(),
        live: None,
    };
    let options = RebuildOptions {
        switch: false,
        ..RebuildOptions::default()
    };
    for projection in catalog::all() {
        let name = projection.name();
        let compared = async {
            let live = versions::active(site.pool(), name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("never built"))?;
            let report = rebuild_projection(projection.clone(), &deps, &options, &Silent).await?;
            let rebuilt = versions::find(site.pool(), name, report.version)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the rebuild left no version"))?;
            Ok::<_, anyhow::Error>(
                differences(site.pool(), projection.as_ref(), &live, &rebuilt).await?,
            )
        };
        match compared.await {
            Ok(differences) => problems.extend(differences.into_iter().map(|d| {
                format!(
                    "{name}.{}: {} rows only live, {} only rebuilt, e.g. {:?}",
                    d.table, d.only_first, d.only_second, d.examples
                )
            })),
            Err(e) => problems.push(format!("{name}: {e:#}")),
        }
    }
    Check::new("every read model equals a rebuild, row for row", problems)
}

/// The JetStream stream holds the log: as many messages as events, in log order, each with
/// the event's id as its message id and its log position.
pub async fn jetstream_copy(site: &Site, log: &LogFacts) -> Check {
    let name = "the JetStream copy equals the log (count, order, message ids)";
    match compare_stream(site, log).await {
        Ok(problems) => Check::new(name, problems),
        Err(e) => Check::new(name, vec![format!("cannot read the stream: {e:#}")]),
    }
}

async fn compare_stream(site: &Site, log: &LogFacts) -> anyhow::Result<Vec<String>> {
    let mut stream = site
        .jetstream
        .get_stream(&site.log_stream.stream_name)
        .await?;
    let state = stream.info().await?.state.clone();
    let mut problems = Vec::new();
    let events = u64::try_from(log.events.len())?;
    if state.messages != events || state.first_sequence != 1 || state.last_sequence != events {
        problems.push(format!(
            "the log holds {events} events; the stream {} messages, sequences {}..={}",
            state.messages, state.first_sequence, state.last_sequence
        ));
    }
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: format!("{}.>", site.log_stream.subject_prefix),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    for (index, (event_id, position)) in log.events.iter().enumerate() {
        let message = tokio::time::timeout(NEXT_MESSAGE, messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("no message {} within 10 s", index + 1))?
            .ok_or_else(|| anyhow::anyhow!("the stream ended at {index}"))??;
        let sequence = message
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        let headers = message.headers.clone().unwrap_or_default();
        let (stored_position, stored_id) = position_of(sequence, &headers)?;
        if sequence != index as u64 + 1
            || stored_id != event_id.to_string()
            || stored_position != *position
        {
            problems.push(format!(
                "event {} of the log ({event_id} at {position}) is message {sequence} \
                 ({stored_id} at {stored_position})",
                index + 1
            ));
            if problems.len() > SHOWN {
                break;
            }
        }
    }
    Ok(problems)
}
