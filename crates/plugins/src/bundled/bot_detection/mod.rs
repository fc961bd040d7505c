//! bot-detection: refuses clients whose User-Agent matches a deny pattern or one of the known
//! bots (unless an allow pattern matches first).

mod rules;
mod schema;

use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{Ctx, Exit};
use crate::registry::PluginDef;
use http::StatusCode;
use regex::bytes::{Regex, RegexSet, RegexSetBuilder};
use schema::BotDetectionConfig;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

pub(crate) const NAME: &str = "bot-detection";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 2500,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: true,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: None,
    }
}

/// Patterns match bytes without Unicode classes, as PCRE without its UTF flag does in Kong.
fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("(?-u){pattern}"))
}

fn compile_set(patterns: &[impl AsRef<str>]) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(patterns.iter().map(|p| format!("(?-u){}", p.as_ref())))
        .size_limit(64 << 20)
        .build()
}

/// The known bots, compiled once per process.
static BOTS: LazyLock<Result<RegexSet, String>> =
    LazyLock::new(|| compile_set(rules::BOTS).map_err(|e| e.to_string()));

/// Verdicts per User-Agent are cached per instance, up to this many (then the cache starts
/// over): clients send few distinct agents, and the bot patterns are many.
const CACHE_SIZE: usize = 10_000;

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: BotDetectionConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let bots = match &*BOTS {
        Ok(_) => &BOTS,
        Err(e) => return Err(format!("bot patterns: {e}")),
    };
    Ok(Arc::new(BotDetection {
        allow: compile_set(&conf.allow).map_err(|e| e.to_string())?,
        deny: compile_set(&conf.deny).map_err(|e| e.to_string())?,
        bots,
        cache: Mutex::new(HashMap::new()),
    }))
}

struct BotDetection {
    allow: RegexSet,
    deny: RegexSet,
    bots: &'static LazyLock<Result<RegexSet, String>>,
    /// User-Agent → refused.
    cache: Mutex<HashMap<Box<[u8]>, bool>>,
}

impl BotDetection {
    fn refused(&self, agent: &[u8]) -> bool {
        if self.allow.is_match(agent) {
            return false;
        }
        if self.deny.is_match(agent) {
            return true;
        }
        matches!(&**self.bots, Ok(set) if set.is_match(agent))
    }

    /// The verdict for an agent, from the cache when it is there. The cache is only ever
    /// tried, never waited for.
    fn verdict(&self, agent: &[u8]) -> bool {
        if let Ok(cache) = self.cache.try_lock()
            && let Some(v) = cache.get(agent)
        {
            return *v;
        }
        let refused = self.refused(agent);
        if let Ok(mut cache) = self.cache.try_lock() {
            if cache.len() >= CACHE_SIZE {
                cache.clear();
            }
            cache.insert(agent.into(), refused);
        }
        refused
    }
}

impl Handler for BotDetection {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        let mut agents = ctx.request.headers.get_all("user-agent");
        let Some(agent) = agents.next() else {
            return Phase::CONTINUE;
        };
        if agents.next().is_some() {
            return Exit::error(
                StatusCode::BAD_REQUEST,
                "Only one User-Agent header allowed",
            )
            .into();
        }
        if self.verdict(agent.trim_ascii()) {
            return Exit::error(StatusCode::FORBIDDEN, "Forbidden").into();
        }
        Phase::CONTINUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kongs_bot_patterns_compile_and_match() {
        let set = BOTS.as_ref().unwrap();
        for bot in [
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "facebookexternalhit/1.1",
            "Twitterbot/1.0",
            "python-requests/2.0 crawler 1.0",
            "Go-http-client/1.1",
            "aws-cli/2.1.0",
        ] {
            assert!(set.is_match(bot.as_bytes()), "{bot}");
        }
        for browser in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "curl/8.5.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        ] {
            assert!(!set.is_match(browser.as_bytes()), "{browser}");
        }
    }
}
