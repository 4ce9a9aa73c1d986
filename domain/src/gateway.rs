//! Gateway: one upstream PSP account owned by a merchant, and the capacity it has left.
//!
//! Stream `gateway-<GatewayId>`. Besides its settings (provider, sealed credentials, on/off,
//! priority, monthly limit, requests-per-minute cap) the state holds what booking needs to keep
//! invariant 4 under concurrency: the current IST month's booked volume and count, a bounded
//! window of recent booking instants, temporary failure and retirement. A payment is only routed
//! to a gateway by appending `GatewayBooked` to this stream (atomically with `PaymentInitiated`),
//! and [`Gateway::check_bookable`] is the one eligibility check, shared with routing.
//!
//! **Volume rule.** A gateway's monthly volume is the sum of bookings made in the current IST
//! calendar month that have not been released. A payment that fails, or is rerouted away,
//! releases its booking (`GatewayBookingReleased`), which lowers the volume of the month the
//! booking was made in (a release of a booking from an earlier month changes nothing, since that
//! month's volume no longer counts). A late success after a release books the amount again,
//! unconditionally, in the month of the late success: it is a fact, so it may push the volume
//! past the limit, after which the gateway is simply not eligible until the month turns.
//! Pending payments keep their booking until they succeed, fail or expire.

use crate::calendar::{self, IstMonth};
use crate::checkout_settings::{CheckoutSettings, MAX_TEMPORARY_FAILURE_SECS};
use crate::decider::Decider;
use crate::ids::{GatewayId, MerchantId, PaymentId};
use crate::money::Paise;
use crate::provider::Provider;
use crate::sealed::SealedSecret;
use crate::validation::{self, FieldError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::checkout_settings::MAX_RPM_CAP;

/// The window a requests-per-minute cap counts bookings over.
pub const RPM_WINDOW: Duration = Duration::from_secs(60);

/// The longest gateway label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

/// The longest temporary-failure or retirement reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// How a merchant configured one gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySettings {
    /// Higher is preferred by smart routing; ties are broken by success rate, then least recent use.
    pub priority: u16,
    /// Most volume this gateway may book per IST calendar month; `None` for no limit.
    pub monthly_limit: Option<Paise>,
    /// Most bookings per minute; `None` falls back to the merchant's default cap, if any.
    pub rpm_cap: Option<u32>,
}

impl Default for GatewaySettings {
    /// Priority 0, no monthly limit, no cap of its own.
    fn default() -> Self {
        GatewaySettings {
            priority: 0,
            monthly_limit: None,
            rpm_cap: None,
        }
    }
}

impl GatewaySettings {
    fn validate(&self) -> Result<(), FieldError> {
        if let Some(limit) = self.monthly_limit {
            validation::amount("monthly_limit", limit, Paise(i64::MAX))?;
        }
        if let Some(cap) = self.rpm_cap {
            validation::range("rpm_cap", u64::from(cap), 1, u64::from(MAX_RPM_CAP))?;
        }
        Ok(())
    }
}

/// Why a gateway cannot take a booking right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Ineligible {
    /// The gateway belongs to another merchant.
    #[error("the gateway belongs to another merchant")]
    OtherMerchant,
    /// The gateway was retired.
    #[error("the gateway is retired")]
    Retired,
    /// The merchant toggled the gateway off.
    #[error("the gateway is toggled off")]
    Disabled,
    /// The gateway failed recently and is resting until `until`.
    #[error("the gateway is temporarily failed until {until}")]
    TemporarilyFailed {
        /// When the rest ends.
        until: DateTime<Utc>,
    },
    /// Booking the amount would take the month's volume past the limit.
    #[error("monthly limit {limit} reached: {volume} booked this month, {amount} requested")]
    MonthlyLimitReached {
        /// The monthly limit.
        limit: Paise,
        /// Volume already booked in the current IST month.
        volume: Paise,
        /// The amount asked for.
        amount: Paise,
    },
    /// The gateway already took `cap` bookings in the last minute.
    #[error("requests-per-minute cap {cap} reached")]
    RateLimited {
        /// The cap in force (the gateway's own or the merchant's default).
        cap: u32,
    },
}

/// A request to book capacity on a gateway for one payment: what routing and booking both check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingRequest {
    /// The merchant the payment is for.
    pub merchant_id: MerchantId,
    /// The payment's amount.
    pub amount: Paise,
    /// The merchant's checkout settings (skip temporarily failed gateways, default RPM cap).
    pub settings: CheckoutSettings,
    /// When the booking is decided.
    pub at: DateTime<Utc>,
}

/// Why a gateway is resting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporaryFailure {
    /// What went wrong, for ops.
    pub reason: String,
    /// When the gateway becomes eligible again.
    pub until: DateTime<Utc>,
}

/// What a gateway has booked: the current IST month's volume and a bounded window of recent
/// booking instants. Compact whatever the length of the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayUsage {
    month: Option<IstMonth>,
    month_volume: Paise,
    month_bookings: u64,
    /// Shared by copies of the state (a hot gateway's is copied for every payment routed on
    /// it, up to `MAX_RPM_CAP` instants); copied only when booked while shared.
    recent_bookings: Arc<VecDeque<DateTime<Utc>>>,
    last_booked_at: Option<DateTime<Utc>>,
}

impl GatewayUsage {
    /// Unreleased volume booked in `month` (zero for any month but the latest one booked).
    pub fn volume_in(&self, month: IstMonth) -> Paise {
        if self.month == Some(month) {
            self.month_volume
        } else {
            Paise::ZERO
        }
    }

    /// Unreleased bookings made in `month`.
    pub fn bookings_in(&self, month: IstMonth) -> u64 {
        if self.month == Some(month) {
            self.month_bookings
        } else {
            0
        }
    }

    /// Bookings in the minute before `now` (the RPM window).
    pub fn requests_in_window(&self, now: DateTime<Utc>) -> usize {
        let from = calendar::minus(now, RPM_WINDOW);
        self.recent_bookings.iter().filter(|&&at| at > from).count()
    }

    /// When the gateway was last routed a payment.
    pub fn last_booked_at(&self) -> Option<DateTime<Utc>> {
        self.last_booked_at
    }

    fn book(&mut self, amount: Paise, at: DateTime<Utc>, routed: bool) {
        let month = IstMonth::of(at);
        match self.month {
            Some(current) if current == month => {
                self.month_volume = self.month_volume.saturating_add(amount);
                self.month_bookings = self.month_bookings.saturating_add(1);
            }
            // Decided on a clock a little behind the previous booking's, across a month end: it
            // belongs to a month that no longer counts.
            Some(current) if current > month => {}
            _ => {
                self.month = Some(month);
                self.month_volume = amount;
                self.month_bookings = 1;
            }
        }
        // A late success is money that arrived, not a request the PSP had to serve: it counts
        // towards volume but neither towards the rate window nor as a use for round robin.
        if routed {
            let newest = self.last_booked_at.map_or(at, |last| last.max(at));
            self.last_booked_at = Some(newest);
            let recent = Arc::make_mut(&mut self.recent_bookings);
            recent.push_back(at);
            let expired = calendar::minus(newest, RPM_WINDOW);
            while recent.front().is_some_and(|&first| first <= expired)
                || recent.len() > MAX_RPM_CAP as usize
            {
                recent.pop_front();
            }
        }
    }

    fn release(&mut self, amount: Paise, booked_at: DateTime<Utc>) {
        if self.month == Some(IstMonth::of(booked_at)) {
            self.month_volume = self.month_volume.saturating_sub(amount).max(Paise::ZERO);
            self.month_bookings = self.month_bookings.saturating_sub(1);
        }
    }
}

/// A gateway as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    id: GatewayId,
    merchant_id: MerchantId,
    provider: Provider,
    label: String,
    credentials: SealedSecret,
    settings: GatewaySettings,
    enabled: bool,
    temporary_failure: Option<TemporaryFailure>,
    retired_at: Option<DateTime<Utc>>,
    usage: GatewayUsage,
    registered_at: DateTime<Utc>,
}

impl Gateway {
    /// The gateway's id.
    pub fn id(&self) -> GatewayId {
        self.id
    }

    /// The merchant who owns it.
    pub fn merchant_id(&self) -> MerchantId {
        self.merchant_id
    }

    /// The PSP it is an account of.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The merchant's name for it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The PSP credentials, sealed; opened only by the `gateways` crate when calling the PSP.
    pub fn credentials(&self) -> &SealedSecret {
        &self.credentials
    }

    /// Priority, monthly limit and RPM cap.
    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// Whether the merchant has it toggled on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether it was retired (terminal).
    pub fn is_retired(&self) -> bool {
        self.retired_at.is_some()
    }

    /// The current temporary failure, if one is recorded (it may already have expired).
    pub fn temporary_failure(&self) -> Option<&TemporaryFailure> {
        self.temporary_failure.as_ref()
    }

    /// Whether it is resting after a failure at `now`.
    pub fn is_temporarily_failed(&self, now: DateTime<Utc>) -> bool {
        self.temporary_failure
            .as_ref()
            .is_some_and(|failure| failure.until > now)
    }

    /// Booked volume, counts and recent booking instants.
    pub fn usage(&self) -> &GatewayUsage {
        &self.usage
    }

    /// When it was registered.
    pub fn registered_at(&self) -> DateTime<Utc> {
        self.registered_at
    }

    /// The RPM cap in force: the gateway's own, else the merchant's default, else none.
    pub fn effective_rpm_cap(&self, settings: &CheckoutSettings) -> Option<u32> {
        self.settings.rpm_cap.or(settings.default_rpm_cap)
    }

    /// Whether a booking decision on this gateway holds however many other bookings (or
    /// releases) land first: true when nothing limits its capacity (no monthly limit, no RPM cap
    /// in force). Then only a toggle, a failure, a retirement or a settings change can make
    /// the decision stale, so concurrent bookings need not conflict.
    pub fn bookings_are_independent(&self, settings: &CheckoutSettings) -> bool {
        self.settings.monthly_limit.is_none() && self.effective_rpm_cap(settings).is_none()
    }

    /// Whether the gateway may take this booking now. The one eligibility rule: routing filters
    /// with it and the `Book` command refuses with it.
    pub fn check_bookable(&self, request: &BookingRequest) -> Result<(), Ineligible> {
        if self.merchant_id != request.merchant_id {
            return Err(Ineligible::OtherMerchant);
        }
        if self.is_retired() {
            return Err(Ineligible::Retired);
        }
        if !self.enabled {
            return Err(Ineligible::Disabled);
        }
        if request.settings.skip_temporarily_failed
            && let Some(failure) = self
                .temporary_failure
                .as_ref()
                .filter(|f| f.until > request.at)
        {
            return Err(Ineligible::TemporarilyFailed {
                until: failure.until,
            });
        }
        if let Some(limit) = self.settings.monthly_limit {
            let volume = self.usage.volume_in(IstMonth::of(request.at));
            let within = volume
                .checked_add(request.amount)
                .is_some_and(|total| total <= limit);
            if !within {
                return Err(Ineligible::MonthlyLimitReached {
                    limit,
                    volume,
                    amount: request.amount,
                });
            }
        }
        if let Some(cap) = self.effective_rpm_cap(&request.settings)
            && self.usage.requests_in_window(request.at) >= cap as usize
        {
            return Err(Ineligible::RateLimited { cap });
        }
        Ok(())
    }
}

/// Everything needed to register a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterGateway {
    /// The new gateway's id (generated by the caller).
    pub gateway_id: GatewayId,
    /// The merchant who owns it.
    pub merchant_id: MerchantId,
    /// The PSP it is an account of.
    pub provider: Provider,
    /// The merchant's name for it.
    pub label: String,
    /// The PSP credentials, already sealed.
    pub credentials: SealedSecret,
    /// Priority, monthly limit and RPM cap.
    pub settings: GatewaySettings,
    /// Whether it starts toggled on.
    pub enabled: bool,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

/// The event types that only change how much of a gateway's capacity is used; see
/// [`Gateway::bookings_are_independent`].
pub const CAPACITY_EVENT_TYPES: &[&str] = &["GatewayBooked", "GatewayBookingReleased"];

/// What can be asked of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GatewayCommand {
    /// Registers a new gateway (appended atomically with `MerchantGatewayAttached`).
    Register(RegisterGateway),
    /// Changes label, priority, monthly limit or RPM cap.
    ChangeSettings {
        /// The new label.
        label: String,
        /// The new settings.
        settings: GatewaySettings,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Replaces the sealed PSP credentials.
    RotateCredentials {
        /// The new credentials, already sealed.
        credentials: SealedSecret,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Turns the gateway on or off.
    Toggle {
        /// On (true) or off (false).
        enabled: bool,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Books capacity for a payment being routed here (appended atomically with `PaymentInitiated`
    /// or `PaymentRerouted`). Refused unless [`Gateway::check_bookable`] passes.
    Book {
        /// The payment being routed.
        payment_id: PaymentId,
        /// Merchant, amount, checkout settings and instant.
        request: BookingRequest,
    },
    /// Books a late success (success after the payment's booking was released). Never refused
    /// for capacity: the money has arrived.
    BookLateSuccess {
        /// The payment that succeeded late.
        payment_id: PaymentId,
        /// Its amount.
        amount: Paise,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Releases a failed or rerouted payment's booking.
    ReleaseBooking {
        /// The payment whose booking ends.
        payment_id: PaymentId,
        /// The booked amount.
        amount: Paise,
        /// When the booking was made (which month's volume it counts in).
        booked_at: DateTime<Utc>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Rests the gateway after a failure for `rest_secs` (the merchant's temporary-failure setting).
    MarkTemporarilyFailed {
        /// What went wrong, for ops.
        reason: String,
        /// How long to rest, in seconds.
        rest_secs: u64,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Ends a temporary failure early (an admin ends the rest; also implied by any recorded
    /// change of settings or credentials).
    ClearTemporaryFailure {
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records the same credentials sealed under another encryption key (key rotation); accepted
    /// on a retired gateway too, so no blob is left under a key that is being dropped.
    ResealCredentials {
        /// The credentials, resealed.
        credentials: SealedSecret,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Retires the gateway for good (appended atomically with `MerchantGatewayDetached`).
    Retire {
        /// Why, for the audit log.
        reason: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a gateway stream records.
    pub enum GatewayEvent {
        /// A merchant registered a gateway.
        GatewayRegistered {
            /// The gateway's id.
            gateway_id: GatewayId,
            /// The merchant who owns it.
            merchant_id: MerchantId,
            /// The PSP.
            provider: Provider,
            /// The merchant's name for it.
            label: String,
            /// The sealed PSP credentials.
            credentials: SealedSecret,
            /// Priority, monthly limit and RPM cap.
            settings: GatewaySettings,
            /// Whether it started toggled on.
            enabled: bool,
            /// When.
            at: DateTime<Utc>,
        },
        /// Label, priority, monthly limit or RPM cap changed.
        GatewaySettingsChanged {
            /// The new label.
            label: String,
            /// The new settings.
            settings: GatewaySettings,
            /// When.
            at: DateTime<Utc>,
        },
        /// The sealed PSP credentials were replaced.
        GatewayCredentialsRotated {
            /// The new sealed credentials.
            credentials: SealedSecret,
            /// When.
            at: DateTime<Utc>,
        },
        /// The gateway was turned on or off.
        GatewayToggled {
            /// On (true) or off (false).
            enabled: bool,
            /// When.
            at: DateTime<Utc>,
        },
        /// Capacity was booked for a payment.
        GatewayBooked {
            /// The payment.
            payment_id: PaymentId,
            /// The amount booked.
            amount: Paise,
            /// True when it records a late success rather than a routing decision.
            late_success: bool,
            /// When.
            at: DateTime<Utc>,
        },
        /// A payment's booking ended without success (failed or rerouted away).
        GatewayBookingReleased {
            /// The payment.
            payment_id: PaymentId,
            /// The amount released.
            amount: Paise,
            /// When the booking was made.
            booked_at: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
        /// The gateway failed and rests until `until`.
        GatewayTemporarilyFailed {
            /// What went wrong.
            reason: String,
            /// When it becomes eligible again.
            until: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
        /// A temporary failure was ended early.
        GatewayRecovered {
            /// When.
            at: DateTime<Utc>,
        },
        /// The same credentials were sealed again under another encryption key.
        GatewayCredentialsResealed {
            /// The credentials, resealed.
            credentials: SealedSecret,
            /// When.
            at: DateTime<Utc>,
        },
        /// The gateway was retired for good.
        GatewayRetired {
            /// Why.
            reason: String,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a gateway command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The stream has no `GatewayRegistered` yet.
    #[error("gateway not registered")]
    NotRegistered,
    /// `Register` on an existing gateway.
    #[error("gateway already registered")]
    AlreadyRegistered,
    /// The gateway is retired; only bookings of payments already in flight are still recorded.
    #[error("gateway is retired")]
    Retired,
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The gateway cannot take this booking.
    #[error("gateway cannot take the booking: {0}")]
    Unavailable(Ineligible),
}

impl Decider for Gateway {
    const SNAPSHOT_VERSION: Option<u32> = Some(1);
    const CATEGORY: &'static str = "gateway";
    type State = Option<Gateway>;
    type Command = GatewayCommand;
    type Event = GatewayEvent;
    type Error = GatewayError;

    fn snapshot(state: &Option<Gateway>) -> Option<serde_json::Value> {
        serde_json::to_value(state).ok()
    }

    fn restore(snapshot: serde_json::Value) -> Option<Option<Gateway>> {
        serde_json::from_value(snapshot).ok()
    }

    fn decide(
        state: &Option<Gateway>,
        command: &GatewayCommand,
    ) -> Result<Vec<GatewayEvent>, GatewayError> {
        let gateway = match (state, command) {
            (None, GatewayCommand::Register(register)) => return register_gateway(register),
            (Some(_), GatewayCommand::Register(_)) => return Err(GatewayError::AlreadyRegistered),
            (None, _) => return Err(GatewayError::NotRegistered),
            (Some(gateway), _) => gateway,
        };
        match command {
            GatewayCommand::Register(_) => Err(GatewayError::AlreadyRegistered),
            // Facts about payments already in flight are recorded even on a retired gateway.
            GatewayCommand::BookLateSuccess {
                payment_id,
                amount,
                at,
            } => Ok(book_late_success(*payment_id, *amount, *at)),
            GatewayCommand::ReleaseBooking {
                payment_id,
                amount,
                booked_at,
                at,
            } => Ok(release_booking(*payment_id, *amount, *booked_at, *at)),
            // Booking answers with the shared eligibility reason, retired included.
            GatewayCommand::Book {
                payment_id,
                request,
            } => book(gateway, *payment_id, request),
            GatewayCommand::ResealCredentials { credentials, at } => {
                Ok(reseal_credentials(gateway, credentials, *at))
            }
            GatewayCommand::Retire { .. } if gateway.is_retired() => Ok(vec![]),
            _ if gateway.is_retired() => Err(GatewayError::Retired),
            GatewayCommand::ChangeSettings {
                label,
                settings,
                at,
            } => change_settings(gateway, label, settings, *at)
                .map(|events| ending_rest(gateway, events, *at)),
            GatewayCommand::RotateCredentials { credentials, at } => Ok(ending_rest(
                gateway,
                rotate_credentials(gateway, credentials, *at),
                *at,
            )),
            GatewayCommand::Toggle { enabled, at } => Ok(toggle(gateway, *enabled, *at)),
            GatewayCommand::MarkTemporarilyFailed {
                reason,
                rest_secs,
                at,
            } => mark_temporarily_failed(gateway, reason, *rest_secs, *at),
            GatewayCommand::ClearTemporaryFailure { at } => {
                Ok(clear_temporary_failure(gateway, *at))
            }
            GatewayCommand::Retire { reason, at } => retire(reason, *at),
        }
    }

    fn evolve(state: Option<Gateway>, event: &GatewayEvent) -> Option<Gateway> {
        match state {
            Some(gateway) => gateway.apply(event),
            // Events before the registration describe no gateway yet.
            None => Gateway::registered(event),
        }
    }
}

impl Gateway {
    /// The gateway a registration event starts; `None` for any other event.
    fn registered(event: &GatewayEvent) -> Option<Gateway> {
        let GatewayEvent::GatewayRegistered {
            gateway_id,
            merchant_id,
            provider,
            label,
            credentials,
            settings,
            enabled,
            at,
        } = event
        else {
            return None;
        };
        Some(Gateway {
            id: *gateway_id,
            merchant_id: *merchant_id,
            provider: *provider,
            label: label.clone(),
            credentials: credentials.clone(),
            settings: *settings,
            enabled: *enabled,
            temporary_failure: None,
            retired_at: None,
            usage: GatewayUsage::default(),
            registered_at: *at,
        })
    }

    /// The gateway after `event`; a registration event starts it afresh.
    fn apply(mut self, event: &GatewayEvent) -> Option<Gateway> {
        match event {
            GatewayEvent::GatewayRegistered { .. } => return Gateway::registered(event),
            GatewayEvent::GatewaySettingsChanged {
                label, settings, ..
            } => {
                self.label = label.clone();
                self.settings = *settings;
            }
            GatewayEvent::GatewayCredentialsRotated { credentials, .. }
            | GatewayEvent::GatewayCredentialsResealed { credentials, .. } => {
                self.credentials = credentials.clone()
            }
            GatewayEvent::GatewayToggled { enabled, .. } => self.enabled = *enabled,
            GatewayEvent::GatewayBooked {
                amount,
                late_success,
                at,
                ..
            } => self.usage.book(*amount, *at, !late_success),
            GatewayEvent::GatewayBookingReleased {
                amount, booked_at, ..
            } => self.usage.release(*amount, *booked_at),
            GatewayEvent::GatewayTemporarilyFailed { reason, until, .. } => {
                self.temporary_failure = Some(TemporaryFailure {
                    reason: reason.clone(),
                    until: *until,
                });
            }
            GatewayEvent::GatewayRecovered { .. } => self.temporary_failure = None,
            GatewayEvent::GatewayRetired { at, .. } => self.retired_at = Some(*at),
        }
        Some(self)
    }
}

fn register_gateway(register: &RegisterGateway) -> Result<Vec<GatewayEvent>, GatewayError> {
    let label = validation::text("label", &register.label, MAX_LABEL_CHARS)?;
    register.settings.validate()?;
    Ok(vec![GatewayEvent::GatewayRegistered {
        gateway_id: register.gateway_id,
        merchant_id: register.merchant_id,
        provider: register.provider,
        label,
        credentials: register.credentials.clone(),
        settings: register.settings,
        enabled: register.enabled,
        at: register.at,
    }])
}

/// A success after the booking was released is money that arrived: booked whatever the capacity.
fn book_late_success(payment_id: PaymentId, amount: Paise, at: DateTime<Utc>) -> Vec<GatewayEvent> {
    vec![GatewayEvent::GatewayBooked {
        payment_id,
        amount,
        late_success: true,
        at,
    }]
}

fn release_booking(
    payment_id: PaymentId,
    amount: Paise,
    booked_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Vec<GatewayEvent> {
    vec![GatewayEvent::GatewayBookingReleased {
        payment_id,
        amount,
        booked_at,
        at,
    }]
}

/// Books a routed payment, refused unless [`Gateway::check_bookable`] passes.
fn book(
    gateway: &Gateway,
    payment_id: PaymentId,
    request: &BookingRequest,
) -> Result<Vec<GatewayEvent>, GatewayError> {
    gateway
        .check_bookable(request)
        .map_err(GatewayError::Unavailable)?;
    Ok(vec![GatewayEvent::GatewayBooked {
        payment_id,
        amount: request.amount,
        late_success: false,
        at: request.at,
    }])
}

fn reseal_credentials(
    gateway: &Gateway,
    credentials: &SealedSecret,
    at: DateTime<Utc>,
) -> Vec<GatewayEvent> {
    if *credentials == gateway.credentials {
        return vec![];
    }
    vec![GatewayEvent::GatewayCredentialsResealed {
        credentials: credentials.clone(),
        at,
    }]
}

fn change_settings(
    gateway: &Gateway,
    label: &str,
    settings: &GatewaySettings,
    at: DateTime<Utc>,
) -> Result<Vec<GatewayEvent>, GatewayError> {
    let label = validation::text("label", label, MAX_LABEL_CHARS)?;
    settings.validate()?;
    if label == gateway.label && *settings == gateway.settings {
        return Ok(vec![]);
    }
    Ok(vec![GatewayEvent::GatewaySettingsChanged {
        label,
        settings: *settings,
        at,
    }])
}

fn rotate_credentials(
    gateway: &Gateway,
    credentials: &SealedSecret,
    at: DateTime<Utc>,
) -> Vec<GatewayEvent> {
    if *credentials == gateway.credentials {
        return vec![];
    }
    vec![GatewayEvent::GatewayCredentialsRotated {
        credentials: credentials.clone(),
        at,
    }]
}

/// `events` (a correction of the gateway's settings or credentials), followed by the end of its
/// rest when it is resting: the rest was for the gateway as it was, and keeping a corrected
/// gateway out of routing would only refuse payments until the rest runs out.
fn ending_rest(
    gateway: &Gateway,
    mut events: Vec<GatewayEvent>,
    at: DateTime<Utc>,
) -> Vec<GatewayEvent> {
    if !events.is_empty() && gateway.is_temporarily_failed(at) {
        events.push(GatewayEvent::GatewayRecovered { at });
    }
    events
}

fn toggle(gateway: &Gateway, enabled: bool, at: DateTime<Utc>) -> Vec<GatewayEvent> {
    if enabled == gateway.enabled {
        return vec![];
    }
    vec![GatewayEvent::GatewayToggled { enabled, at }]
}

/// Rests the gateway for `rest_secs`; a rest already running longer is kept.
fn mark_temporarily_failed(
    gateway: &Gateway,
    reason: &str,
    rest_secs: u64,
    at: DateTime<Utc>,
) -> Result<Vec<GatewayEvent>, GatewayError> {
    let reason = validation::excerpt(reason, MAX_REASON_CHARS);
    validation::range("rest_secs", rest_secs, 1, MAX_TEMPORARY_FAILURE_SECS)?;
    // Two workers reporting the same outage must not shorten the rest.
    let until = calendar::plus_secs(at, rest_secs);
    let until = gateway
        .temporary_failure
        .as_ref()
        .map_or(until, |failure| failure.until.max(until));
    Ok(vec![GatewayEvent::GatewayTemporarilyFailed {
        reason,
        until,
        at,
    }])
}

fn clear_temporary_failure(gateway: &Gateway, at: DateTime<Utc>) -> Vec<GatewayEvent> {
    if !gateway.is_temporarily_failed(at) {
        return vec![];
    }
    vec![GatewayEvent::GatewayRecovered { at }]
}

fn retire(reason: &str, at: DateTime<Utc>) -> Result<Vec<GatewayEvent>, GatewayError> {
    let reason = validation::text("reason", reason, MAX_REASON_CHARS)?;
    Ok(vec![GatewayEvent::GatewayRetired { reason, at }])
}

#[cfg(test)]
mod tests;
