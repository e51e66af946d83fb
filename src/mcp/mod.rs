//! What the gateway understands of MCP: JSON-RPC message framing and the method table.
//!
//! Parsing is zero-copy over the request body: the gateway learns the method, the id and,
//! for `tools/call`, the tool name, without building a `serde_json::Value` tree. It does not
//! validate params of other methods; the upstream does that.

pub mod capabilities;
pub mod envelope;
pub mod headers;
pub mod jsonrpc;
pub mod outcome;
pub mod params;
pub mod revision;
pub mod rewrite;
pub mod stamp;
pub mod strict;

/// MCP methods the gateway knows by name. Used as a bounded metric label and, later, for
/// routing and policy. Anything else is [`McpMethod::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum McpMethod {
    Initialize,
    Ping,
    ToolsList,
    ToolsCall,
    ResourcesList,
    ResourcesRead,
    ResourcesTemplatesList,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    PromptsList,
    PromptsGet,
    CompletionComplete,
    LoggingSetLevel,
    ServerDiscover,
    /// Any `notifications/*` message.
    Notification,
    /// A JSON-RPC response from the client (answer to a server-to-client request).
    Response,
    /// A GET (server-to-client stream) or DELETE (end session): no JSON-RPC body.
    Stream,
    EndSession,
    /// Nothing parsed yet (request rejected before the body was read).
    Unknown,
    Other,
    /// 2026-07-28 `subscriptions/listen` (a long-lived stream of change notifications).
    SubscriptionsListen,
}

impl McpMethod {
    /// Classify a method name.
    pub fn from_name(name: &str) -> McpMethod {
        match name {
            "initialize" => McpMethod::Initialize,
            "ping" => McpMethod::Ping,
            "tools/list" => McpMethod::ToolsList,
            "tools/call" => McpMethod::ToolsCall,
            "resources/list" => McpMethod::ResourcesList,
            "resources/read" => McpMethod::ResourcesRead,
            "resources/templates/list" => McpMethod::ResourcesTemplatesList,
            "resources/subscribe" => McpMethod::ResourcesSubscribe,
            "resources/unsubscribe" => McpMethod::ResourcesUnsubscribe,
            "prompts/list" => McpMethod::PromptsList,
            "prompts/get" => McpMethod::PromptsGet,
            "completion/complete" => McpMethod::CompletionComplete,
            "logging/setLevel" => McpMethod::LoggingSetLevel,
            "server/discover" => McpMethod::ServerDiscover,
            "subscriptions/listen" => McpMethod::SubscriptionsListen,
            n if n.starts_with("notifications/") => McpMethod::Notification,
            _ => McpMethod::Other,
        }
    }

    /// Whether re-sending the request after a connection failure cannot repeat a side
    /// effect: read-only methods and the GET stream.
    pub fn is_safe_to_retry(self) -> bool {
        matches!(
            self,
            McpMethod::Ping
                | McpMethod::ToolsList
                | McpMethod::ResourcesList
                | McpMethod::ResourcesTemplatesList
                | McpMethod::PromptsList
                | McpMethod::Stream
        )
    }

    /// The metric label: a fixed string per variant.
    pub fn as_label(self) -> &'static str {
        match self {
            McpMethod::Initialize => "initialize",
            McpMethod::Ping => "ping",
            McpMethod::ToolsList => "tools/list",
            McpMethod::ToolsCall => "tools/call",
            McpMethod::ResourcesList => "resources/list",
            McpMethod::ResourcesRead => "resources/read",
            McpMethod::ResourcesTemplatesList => "resources/templates/list",
            McpMethod::ResourcesSubscribe => "resources/subscribe",
            McpMethod::ResourcesUnsubscribe => "resources/unsubscribe",
            McpMethod::PromptsList => "prompts/list",
            McpMethod::PromptsGet => "prompts/get",
            McpMethod::CompletionComplete => "completion/complete",
            McpMethod::LoggingSetLevel => "logging/setLevel",
            McpMethod::ServerDiscover => "server/discover",
            McpMethod::Notification => "notification",
            McpMethod::Response => "response",
            McpMethod::Stream => "GET stream",
            McpMethod::EndSession => "DELETE session",
            McpMethod::Unknown => "unknown",
            McpMethod::Other => "other",
            McpMethod::SubscriptionsListen => "subscriptions/listen",
        }
    }
}
