//! What a client's CONNECT says: [`ConnectOptions`] and its builder.

use bytes::Bytes;

use crate::codec::{Connect, Properties, ProtocolVersion, Will};

/// Everything a CONNECT can say, with a builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Protocol version (default 5).
    pub version: ProtocolVersion,
    /// Client identifier ("" asks the broker to assign one).
    pub client_id: String,
    /// Clean Session (3.1.1) / Clean Start (5); default true.
    pub clean_start: bool,
    /// Keep alive in seconds (default 60; 0 disables PINGREQ).
    pub keep_alive: u16,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// Will message, with its properties (MQTT 5).
    pub will: Option<Will>,
    /// CONNECT properties (MQTT 5): session expiry, receive maximum, maximum packet size,
    /// topic alias maximum, request response/problem information, user properties,
    /// authentication method/data.
    pub properties: Properties,
}

impl ConnectOptions {
    /// Defaults: MQTT 5, clean start, keep alive 60 s, no will, no credentials.
    pub fn new(client_id: impl Into<String>) -> Self {
        ConnectOptions {
            version: ProtocolVersion::V5,
            client_id: client_id.into(),
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            properties: Default::default(),
        }
    }

    /// Protocol version.
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// Clean Session / Clean Start.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.clean_start = clean;
        self
    }

    /// Keep alive in seconds.
    pub fn keep_alive(mut self, seconds: u16) -> Self {
        self.keep_alive = seconds;
        self
    }

    /// User name and optional password.
    pub fn credentials(mut self, username: impl Into<String>, password: Option<Bytes>) -> Self {
        self.username = Some(username.into());
        self.password = password;
        self
    }

    /// Will message.
    pub fn will(mut self, will: Will) -> Self {
        self.will = Some(will);
        self
    }

    /// Session Expiry Interval in seconds (MQTT 5).
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.properties.session_expiry_interval = Some(seconds);
        self
    }

    /// Receive Maximum (MQTT 5): QoS 1/2 messages the broker may have in flight to us.
    pub fn receive_maximum(mut self, max: u16) -> Self {
        self.properties.receive_maximum = Some(max);
        self
    }

    /// Maximum Packet Size (MQTT 5) this client accepts.
    pub fn maximum_packet_size(mut self, max: u32) -> Self {
        self.properties.maximum_packet_size = Some(max);
        self
    }

    /// Topic Alias Maximum (MQTT 5) this client accepts.
    pub fn topic_alias_maximum(mut self, max: u16) -> Self {
        self.properties.topic_alias_maximum = Some(max);
        self
    }

    /// Request Response Information (MQTT 5).
    pub fn request_response_information(mut self, on: bool) -> Self {
        self.properties.request_response_information = Some(u8::from(on));
        self
    }

    /// Request Problem Information (MQTT 5).
    pub fn request_problem_information(mut self, on: bool) -> Self {
        self.properties.request_problem_information = Some(u8::from(on));
        self
    }

    /// Add a user property (MQTT 5).
    pub fn user_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties
            .user_properties
            .push((key.into().into(), value.into().into()));
        self
    }

    /// Authentication method and data (MQTT 5 enhanced authentication).
    pub fn authentication(mut self, method: impl Into<String>, data: Option<Bytes>) -> Self {
        self.properties.authentication_method = Some(method.into().into());
        self.properties.authentication_data = data;
        self
    }

    /// The CONNECT packet these options describe.
    pub fn to_packet(&self) -> Connect {
        let v5 = self.version.is_v5();
        Connect {
            protocol: self.version,
            clean_start: self.clean_start,
            keep_alive: self.keep_alive,
            client_id: self.client_id.clone(),
            will: self.will.clone().map(|mut w| {
                if !v5 {
                    w.properties = Default::default();
                }
                w
            }),
            username: self.username.clone(),
            password: self.password.clone(),
            properties: if v5 {
                self.properties.clone().into()
            } else {
                Default::default()
            },
        }
    }
}
