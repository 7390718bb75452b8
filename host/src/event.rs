//! The typed event a provider decodes a request into, independent of any
//! WIT version: the runtime converts it to whichever version a plugin
//! targets. The store keeps an event's verified raw JSON and decodes it
//! again when the event is read (`providers::decode_again`).

use serde::{Deserialize, Serialize};

/// The person on the other side, as far as the provider tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: Option<String>,
    pub contact: Contact,
    pub conversation_id: Option<String>,
    pub text: Option<String>,
    pub content_type: String,
    pub media_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub message_id: String,
    pub status: String,
    pub timestamp_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowStage {
    Started,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowEvent {
    pub flow_id: Option<String>,
    pub flow_name: Option<String>,
    pub stage: FlowStage,
    pub contact: Contact,
    pub variables: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignEvent {
    pub campaign_id: Option<String>,
    pub label: Option<String>,
    pub contact: Contact,
    pub response: Option<String>,
    pub chosen_option: Option<String>,
    pub keyword: Option<String>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub id: Option<String>,
    pub title: String,
    pub sku: Option<String>,
    pub quantity: u32,
    /// Unit price, a decimal number as the provider writes it.
    pub price: Option<String>,
}

/// An order placed in a shop. Amounts stay the provider's decimal text:
/// a float would round them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub number: Option<String>,
    pub financial_status: Option<String>,
    pub fulfillment_status: Option<String>,
    pub currency: Option<String>,
    pub total: Option<String>,
    pub subtotal: Option<String>,
    pub tax: Option<String>,
    pub contact: Contact,
    pub line_items: Vec<LineItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    MessageReceived(Message),
    MessageStatus(StatusUpdate),
    Flow(FlowEvent),
    /// A flow waits for the reply.
    FlowCall(FlowEvent),
    Campaign(CampaignEvent),
    Order(Order),
    Other,
}

/// What a provider decodes out of one verified request (a request may
/// carry several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoded {
    /// The provider's own event name.
    pub kind: String,
    pub payload: Payload,
    /// The verified JSON this event was decoded from.
    pub raw_json: String,
    /// The provider's id for this event, when it sends one.
    pub provider_id: Option<String>,
}

/// Where and when an event arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub provider: String,
    pub route: String,
    pub delivery_id: String,
    pub received_at_ms: u64,
    /// 1 for the first delivery, then counting retries.
    pub attempt: u32,
}

/// A verified, decoded event on its way to plugins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub source: Source,
    pub kind: String,
    pub payload: Payload,
    pub raw_json: String,
}
