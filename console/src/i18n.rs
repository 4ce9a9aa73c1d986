//! The console's words in English and Hindi. The language comes from the `ls_lang` cookie (set
//! by the switch in the header), else from `Accept-Language`, else English.

use axum::http::HeaderMap;

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Hindi.
    Hi,
}

impl Lang {
    /// The language's code, for `lang=` and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Hi => "hi",
        }
    }

    /// The language of a code, if the console speaks it.
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().get(..2)?.to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "hi" => Some(Lang::Hi),
            _ => None,
        }
    }

    /// The language a request asks for: the cookie's, else the first spoken one of
    /// `Accept-Language`, else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = crate::web::cookie(headers, LANG_COOKIE).and_then(|c| Lang::parse(&c)) {
            return lang;
        }
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').find_map(Lang::parse))
            .unwrap_or(Lang::En)
    }

    /// This message in this language.
    pub fn t(self, msg: Msg) -> &'static str {
        let (en, hi) = msg.texts();
        match self {
            Lang::En => en,
            Lang::Hi => hi,
        }
    }
}

/// The cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "ls_lang";

macro_rules! messages {
    ($( $(#[$doc:meta])* $name:ident => ($en:literal, $hi:literal), )*) => {
        /// Every message the console shows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg {
            $( $(#[$doc])* $name, )*
        }

        impl Msg {
            /// Every message, for the catalogue's completeness test.
            pub const ALL: &'static [Msg] = &[$(Msg::$name),*];

            /// (English, Hindi).
            fn texts(self) -> (&'static str, &'static str) {
                match self {
                    $( Msg::$name => ($en, $hi), )*
                }
            }
        }
    };
}

messages! {
    /// Product name.
    Console => ("LightSpeed console", "लाइटस्पीड कंसोल"),
    /// Navigation landmark.
    MainNavigation => ("Main navigation", "मुख्य नेविगेशन"),
    /// Page.
    Overview => ("Overview", "अवलोकन"),
    /// Page.
    Merchants => ("Merchants", "व्यापारी"),
    /// Page.
    Gateways => ("Gateways", "गेटवे"),
    /// Page.
    Transactions => ("Transactions", "लेन-देन"),
    /// A payment's page.
    Payment => ("Payment", "भुगतान"),
    /// Page.
    Sessions => ("Sessions", "सत्र"),
    /// Button.
    SignOut => ("Sign out", "साइन आउट"),
    /// Heading and button.
    SignIn => ("Sign in", "साइन इन"),
    /// Label.
    Email => ("Email", "ईमेल"),
    /// Button.
    SendLink => ("Send me a sign-in link", "मुझे साइन-इन लिंक भेजें"),
    /// After the sign-in form.
    LinkSent => ("If this email belongs to someone who may use the console, a sign-in link is on its way. It works once, for a short while.", "यदि यह ईमेल कंसोल उपयोगकर्ता का है, तो साइन-इन लिंक भेजा जा रहा है। यह एक बार, थोड़े समय के लिए काम करता है।"),
    /// A link that does not work.
    LinkInvalid => ("This sign-in link does not work: it was used already, has expired, or was mistyped. Ask for a new one.", "यह साइन-इन लिंक काम नहीं करता: यह पहले ही उपयोग हो चुका है, समाप्त हो गया है या गलत है। नया लिंक माँगें।"),
    /// Session over.
    SessionExpired => ("Your session has ended. Sign in again.", "आपका सत्र समाप्त हो गया है। फिर से साइन इन करें।"),
    /// 403 page.
    Forbidden => ("Your role does not allow this change.", "आपकी भूमिका यह परिवर्तन करने की अनुमति नहीं देती।"),
    /// CSRF refusal.
    CsrfRefused => ("This form is out of date. Reload the page and try again.", "यह फ़ॉर्म पुराना है। पृष्ठ फिर से लोड करें और पुनः प्रयास करें।"),
    /// 404.
    NotFound => ("Not found.", "नहीं मिला।"),
    /// Failure.
    Unavailable => ("Something went wrong; nothing was changed. Try again shortly.", "कुछ गलत हो गया; कुछ नहीं बदला गया। थोड़ी देर में फिर प्रयास करें।"),
    /// Theme switch.
    Theme => ("Theme", "थीम"),
    /// Theme.
    Light => ("Light", "हल्की"),
    /// Theme.
    Dark => ("Dark", "गहरी"),
    /// Language switch.
    Language => ("Language", "भाषा"),
    /// Who is signed in.
    SignedInAs => ("Signed in as", "साइन इन:"),
    /// Role.
    Role => ("Role", "भूमिका"),
    /// Overview card.
    PaymentsPerMinute => ("Payments per minute (last 30 min)", "प्रति मिनट भुगतान (पिछले 30 मिनट)"),
    /// Overview card.
    SuccessRate => ("Success rate", "सफलता दर"),
    /// Overview card.
    CommissionToday => ("Commission today", "आज का कमीशन"),
    /// Overview card.
    QueueDepths => ("Queue depths", "कतार की गहराई"),
    /// Overview card.
    ProjectionLag => ("Projection lag", "प्रोजेक्शन विलंब"),
    /// Overview card.
    RelayLag => ("Relay lag", "रिले विलंब"),
    /// Overview card.
    OpenAlerts => ("Open alerts", "खुले अलर्ट"),
    /// Empty.
    NoneYet => ("None", "कोई नहीं"),
    /// Column.
    Queue => ("Queue", "कतार"),
    /// Column.
    Waiting => ("Waiting", "प्रतीक्षारत"),
    /// Column.
    Running => ("Running", "चल रहे"),
    /// Column.
    Failed => ("Failed", "विफल"),
    /// Column.
    Projection => ("Projection", "प्रोजेक्शन"),
    /// Column.
    Events => ("Events", "इवेंट"),
    /// Column.
    Merchant => ("Merchant", "व्यापारी"),
    /// Column.
    Provider => ("Provider", "प्रदाता"),
    /// Column.
    Label => ("Label", "लेबल"),
    /// Column.
    Status => ("Status", "स्थिति"),
    /// Column.
    Priority => ("Priority", "प्राथमिकता"),
    /// Column.
    MonthlyUsage => ("This month / limit", "इस माह / सीमा"),
    /// Column.
    RequestsPerMinute => ("Requests (2 min)", "अनुरोध (2 मिनट)"),
    /// Column.
    Resting => ("Resting after failure", "विफलता के बाद विश्राम"),
    /// Column.
    Actions => ("Actions", "कार्रवाई"),
    /// State.
    Enabled => ("Enabled", "सक्रिय"),
    /// State.
    Disabled => ("Disabled", "निष्क्रिय"),
    /// Button.
    Enable => ("Enable", "सक्रिय करें"),
    /// Button.
    Disable => ("Disable", "निष्क्रिय करें"),
    /// Button.
    Recover => ("End rest", "विश्राम समाप्त करें"),
    /// Button.
    TestConnection => ("Test connection", "कनेक्शन जाँचें"),
    /// Button.
    SavePriorities => ("Save priority order", "प्राथमिकता क्रम सहेजें"),
    /// Unlimited.
    NoLimit => ("no limit", "कोई सीमा नहीं"),
    /// Until.
    Until => ("until", "तक"),
    /// Column.
    Amount => ("Amount", "राशि"),
    /// Column.
    OrderId => ("Order id", "ऑर्डर आईडी"),
    /// Column.
    Initiated => ("Initiated", "आरंभ"),
    /// Column.
    Commission => ("Commission", "कमीशन"),
    /// Button.
    Search => ("Search", "खोजें"),
    /// Filter.
    AnyStatus => ("Any status", "कोई भी स्थिति"),
    /// Pagination.
    Older => ("Older", "पुराने"),
    /// Payment page heading.
    PaymentHistory => ("Every event of this payment, in log order", "इस भुगतान के सभी इवेंट, लॉग क्रम में"),
    /// Column.
    Time => ("Time", "समय"),
    /// Column.
    EventType => ("Event", "इवेंट"),
    /// Column.
    Actor => ("Actor", "कर्ता"),
    /// Column.
    Started => ("Started", "आरंभ"),
    /// Column.
    LastSeen => ("Last seen", "अंतिम बार देखा"),
    /// Button.
    Revoke => ("Revoke", "रद्द करें"),
    /// Column.
    Fee => ("Fee", "शुल्क"),
    /// Column.
    Standing => ("Standing", "स्थिति"),
    /// Merchant detail.
    Thresholds => ("Thresholds", "सीमाएँ"),
    /// Merchant detail.
    CheckoutSettings => ("Checkout settings", "चेकआउट सेटिंग्स"),
    /// Merchant detail.
    WebhookEndpoints => ("Webhook endpoints", "वेबहुक एंडपॉइंट"),
    /// Merchant detail.
    Statements => ("Statements", "विवरण"),
    /// Button.
    RegenerateKeys => ("Regenerate API keys", "एपीआई कुंजियाँ पुनः बनाएँ"),
    /// Merchant search.
    SearchMerchants => ("Company name", "कंपनी का नाम"),
    /// Result.
    Done => ("Done.", "हो गया।"),
    /// Gateway test result.
    Reachable => ("Reachable", "पहुँच योग्य"),
    /// Gateway test result.
    Unreachable => ("Unreachable", "पहुँच से बाहर"),
    /// Add gateway form.
    AddGateway => ("Add a sandbox gateway", "सैंडबॉक्स गेटवे जोड़ें"),
    /// Button.
    Add => ("Add", "जोड़ें"),
    /// Skip link.
    SkipToContent => ("Skip to content", "सामग्री पर जाएँ"),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages() {
        for msg in Msg::ALL {
            assert!(!Lang::En.t(*msg).is_empty(), "{msg:?}");
            assert!(!Lang::Hi.t(*msg).is_empty(), "{msg:?}");
        }
    }

    #[test]
    fn the_cookie_wins_over_accept_language() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "accept-language",
            "hi-IN,hi;q=0.9,en;q=0.8".parse().unwrap(),
        );
        assert_eq!(Lang::of(&headers), Lang::Hi);
        headers.insert("cookie", "ls_lang=en".parse().unwrap());
        assert_eq!(Lang::of(&headers), Lang::En);
        assert_eq!(Lang::of(&HeaderMap::new()), Lang::En);
    }
}
