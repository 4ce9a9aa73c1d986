//! Gateway operations that also touch the merchant's stream.

use lightspeed_domain::gateway::{Gateway, GatewayCommand, GatewaySettings, RegisterGateway};
use lightspeed_domain::merchant::{Merchant, MerchantCommand};
use lightspeed_domain::{Decider, GatewayId, MerchantId};
use lightspeed_eventstore::{AppendError, CommandContext, Loaded, stream_of};

use crate::error::ServiceError;
use crate::ledger::{Ledger, MAX_ATTEMPTS};
use crate::unit_of_work::UnitOfWork;

/// A gateway to register: the domain command, with its credentials already sealed.
pub type NewGateway = RegisterGateway;

impl Ledger {
    /// Registers a gateway and attaches it to its merchant (at most 50 active), atomically.
    pub async fn register_gateway(
        &self,
        command: NewGateway,
        context: &CommandContext,
    ) -> Result<Gateway, ServiceError> {
        let merchant_stream = stream_of::<Merchant>(command.merchant_id)?;
        let gateway_stream = stream_of::<Gateway>(command.gateway_id)?;
        for _ in 0..MAX_ATTEMPTS {
            let merchant = self.merchants.load(&merchant_stream).await?;
            if merchant.state.is_none() {
                return Err(ServiceError::UnknownMerchant);
            }
            let mut unit = UnitOfWork::new(context.clone());
            let attach = MerchantCommand::AttachGateway {
                gateway_id: command.gateway_id,
                at: command.at,
            };
            unit.decide(&self.merchants, &merchant_stream, &merchant, &attach)?;
            let register = GatewayCommand::Register(command.clone());
            let events = unit.decide(
                &self.gateways,
                &gateway_stream,
                &Loaded::default(),
                &register,
            )?;
            match unit.commit(&self.store).await {
                Ok(_) => {
                    return Gateway::fold(&events)
                        .ok_or(ServiceError::UnknownGateway(command.gateway_id));
                }
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// Retires a gateway for good and detaches it from its merchant, atomically.
    pub async fn retire_gateway(
        &self,
        merchant_id: MerchantId,
        gateway_id: GatewayId,
        reason: String,
        context: &CommandContext,
    ) -> Result<Gateway, ServiceError> {
        let merchant_stream = stream_of::<Merchant>(merchant_id)?;
        let gateway_stream = stream_of::<Gateway>(gateway_id)?;
        for _ in 0..MAX_ATTEMPTS {
            let (merchant, gateway) = tokio::try_join!(
                async { Ok::<_, ServiceError>(self.merchants.load(&merchant_stream).await?) },
                async { Ok::<_, ServiceError>(self.gateways.load(&gateway_stream).await?) }
            )?;
            let owned = gateway
                .state
                .as_ref()
                .is_some_and(|g| g.merchant_id() == merchant_id);
            if !owned {
                return Err(ServiceError::UnknownGateway(gateway_id));
            }
            let at = self.now();
            let mut unit = UnitOfWork::new(context.clone());
            let retire = GatewayCommand::Retire {
                reason: reason.clone(),
                at,
            };
            let events = unit.decide(&self.gateways, &gateway_stream, &gateway, &retire)?;
            let detach = MerchantCommand::DetachGateway { gateway_id, at };
            unit.decide(&self.merchants, &merchant_stream, &merchant, &detach)?;
            if unit.is_empty() {
                // Retired before: nothing to record.
                return gateway
                    .state
                    .ok_or(ServiceError::UnknownGateway(gateway_id));
            }
            match unit.commit(&self.store).await {
                Ok(_) => {
                    let state = events.iter().fold(gateway.state, Gateway::evolve);
                    return state.ok_or(ServiceError::UnknownGateway(gateway_id));
                }
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// Decides `commands` in order on the gateway and appends all their events at once (an admin
    /// edit of several settings); any refusal appends nothing.
    pub async fn update_gateway(
        &self,
        gateway_id: GatewayId,
        commands: &[GatewayCommand],
        context: &CommandContext,
    ) -> Result<Gateway, ServiceError> {
        let stream = stream_of::<Gateway>(gateway_id)?;
        self.execute_all(&self.gateways, &stream, commands, context)
            .await?
            .state
            .ok_or(ServiceError::UnknownGateway(gateway_id))
    }

    /// Sets the priority of several gateways (of any merchants) atomically: all or none.
    pub async fn set_gateway_priorities(
        &self,
        priorities: &[(GatewayId, u16)],
        context: &CommandContext,
    ) -> Result<Vec<Gateway>, ServiceError> {
        let mut streams = Vec::with_capacity(priorities.len());
        for (index, (gateway_id, _)) in priorities.iter().enumerate() {
            if priorities[..index]
                .iter()
                .any(|(seen, _)| seen == gateway_id)
            {
                return Err(ServiceError::DuplicateGateway(*gateway_id));
            }
            streams.push(stream_of::<Gateway>(gateway_id)?);
        }
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.gateways.load_many(&streams).await?;
            let at = self.now();
            let mut unit = UnitOfWork::new(context.clone());
            let mut after = Vec::with_capacity(loaded.len());
            for ((stream, state), (gateway_id, priority)) in
                streams.iter().zip(&loaded).zip(priorities)
            {
                let gateway = state
                    .state
                    .as_ref()
                    .ok_or(ServiceError::UnknownGateway(*gateway_id))?;
                let change = GatewayCommand::ChangeSettings {
                    label: gateway.label().to_owned(),
                    settings: GatewaySettings {
                        priority: *priority,
                        ..*gateway.settings()
                    },
                    at,
                };
                let events = unit.decide(&self.gateways, stream, state, &change)?;
                after.push(events.iter().fold(state.state.clone(), Gateway::evolve));
            }
            // Every priority already as asked: nothing to record.
            let unchanged = unit.is_empty();
            match if unchanged {
                Ok(())
            } else {
                unit.commit(&self.store).await.map(drop)
            } {
                Ok(()) => {
                    return after
                        .into_iter()
                        .zip(priorities)
                        .map(|(state, (id, _))| state.ok_or(ServiceError::UnknownGateway(*id)))
                        .collect();
                }
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// A gateway's current state, whoever owns it (admin reads).
    pub async fn gateway(&self, gateway_id: GatewayId) -> Result<Gateway, ServiceError> {
        self.gateways
            .load(&stream_of::<Gateway>(gateway_id)?)
            .await?
            .state
            .ok_or(ServiceError::UnknownGateway(gateway_id))
    }

    /// A gateway's current state, if it belongs to `merchant_id`.
    pub async fn gateway_of(
        &self,
        merchant_id: MerchantId,
        gateway_id: GatewayId,
    ) -> Result<Gateway, ServiceError> {
        self.gateways
            .load(&stream_of::<Gateway>(gateway_id)?)
            .await?
            .state
            .filter(|g| g.merchant_id() == merchant_id)
            .ok_or(ServiceError::UnknownGateway(gateway_id))
    }
}
