//! Per-run isolation: every topic, topic filter and client id of a case execution gets a
//! prefix, so that runs never collide, even on a shared broker.

/// The prefixes of one case execution.
#[derive(Debug, Clone)]
pub struct Prefixer {
    topic: String,
    client: String,
}

impl Prefixer {
    /// Prefixes for execution `index` of run `run_id` of case `case`:
    /// topics `mqttc/<run>-<index>/<case>/`, client ids `<run><index>-`. Only characters that
    /// every broker keeps: RabbitMQ 3.10's MQTT plugin maps `.` to `/` (its AMQP routing
    /// keys), which made every case fail on the prefix, whatever it checked.
    pub fn new(run_id: &str, index: usize, case: &str) -> Prefixer {
        Prefixer::rooted("mqttc", run_id, index, case)
    }

    /// Like [`Prefixer::new`], under the topic levels `root` instead of `mqttc` (a broker
    /// profile's ACL root): `<root>/<run>-<index>/<case>/`.
    pub fn rooted(root: &str, run_id: &str, index: usize, case: &str) -> Prefixer {
        Prefixer {
            topic: format!("{root}/{run_id}-{index}/{case}/"),
            client: format!("{run_id}{index}-"),
        }
    }

    /// A prefixer that changes nothing (tests).
    pub fn identity() -> Prefixer {
        Prefixer {
            topic: String::new(),
            client: String::new(),
        }
    }

    /// The topic prefix.
    pub fn topic_prefix(&self) -> &str {
        &self.topic
    }

    /// The prefixed form of a topic name or filter: `$SYS/...` is left alone and
    /// `$share/<group>/<filter>` keeps its share part. Two forms keep their first level so a
    /// case about `$` topics stays isolated: another `$name` becomes `$<prefix>name` (its first
    /// level is `$mqttc`), and a filter `+/rest` becomes `+/<prefix without mqttc/>rest`
    /// (it matches `<prefix>rest` and `$<prefix>rest`, nothing of another run).
    pub fn topic(&self, topic: &str) -> String {
        if topic.starts_with("$SYS") || self.topic.is_empty() {
            return topic.to_string();
        }
        if let Some(rest) = topic.strip_prefix("$share/") {
            if let Some((group, filter)) = rest.split_once('/') {
                return format!("$share/{group}/{}{filter}", self.topic);
            }
        }
        if let Some(rest) = topic.strip_prefix('$') {
            return format!("${}{rest}", self.topic);
        }
        if let Some(rest) = topic.strip_prefix("+/") {
            let tail = self
                .topic
                .split_once('/')
                .map_or(self.topic.as_str(), |(_, t)| t);
            return format!("+/{tail}{rest}");
        }
        format!("{}{topic}", self.topic)
    }

    /// The topic as the scenario wrote it, if it carries this prefix.
    pub fn strip<'a>(&self, topic: &'a str) -> &'a str {
        topic.strip_prefix(self.topic.as_str()).unwrap_or(topic)
    }

    /// The client id of client `name`: `auto`/absent gives `<prefix><name>`, `""` stays
    /// empty, anything else is prefixed.
    pub fn client_id(&self, name: &str, configured: Option<&str>) -> String {
        match configured {
            None | Some("auto") => format!("{}{name}", self.client),
            Some("") => String::new(),
            Some(id) => format!("{}{id}", self.client),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_ids_are_prefixed() {
        let p = Prefixer::new("r1", 3, "case");
        assert_eq!(p.topic("a/b"), "mqttc/r1-3/case/a/b");
        assert_eq!(p.topic("$share/g/a/+"), "$share/g/mqttc/r1-3/case/a/+");
        assert_eq!(p.topic("$SYS/broker"), "$SYS/broker");
        assert_eq!(p.topic("$x"), "$mqttc/r1-3/case/x");
        assert_eq!(p.topic("+/x"), "+/r1-3/case/x");
        assert_eq!(p.strip("mqttc/r1-3/case/a/b"), "a/b");
        assert_eq!(p.client_id("sub", None), "r13-sub");
        assert_eq!(p.client_id("sub", Some("")), "");
        assert_eq!(p.client_id("sub", Some("x")), "r13-x");
    }
}
