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
    // Pages added beside the first ones: queues, commission, WhatsApp, webhook deliveries,
    // refunds, alerts, audit log, projections.
    /// Page.
    Queues => ("Queues", "कतारें"),
    /// Queue button.
    QueuePause => ("Pause", "रोकें"),
    /// Queue button.
    QueueResume => ("Resume", "फिर चालू करें"),
    /// Queue button.
    QueueRetry => ("Retry failed", "विफल फिर चलाएँ"),
    /// Queue button.
    QueueDrain => ("Drain", "खाली करें"),
    /// Confirmation.
    QueuePauseExplained => ("Pausing stops workers fetching from this queue. Its jobs wait in the broker; none is lost.", "रोकने से वर्कर इस कतार से काम लेना बंद कर देते हैं। काम ब्रोकर में प्रतीक्षा करते हैं; कोई नहीं खोता।"),
    /// Confirmation.
    QueueResumeExplained => ("Resuming lets workers fetch from this queue again.", "फिर चालू करने से वर्कर इस कतार से फिर काम लेने लगते हैं।"),
    /// Confirmation.
    QueueRetryExplained => ("Every failed job of this queue is put back to run again.", "इस कतार का हर विफल काम फिर से चलने के लिए वापस रखा जाता है।"),
    /// Confirmation.
    QueueDrainExplained => ("Draining discards every job waiting in this queue. This cannot be undone.", "खाली करने से इस कतार में प्रतीक्षारत हर काम हटा दिया जाता है। इसे वापस नहीं किया जा सकता।"),
    /// Drain confirmation field.
    TypeQueueName => ("Type the queue's name to confirm", "पुष्टि के लिए कतार का नाम लिखें"),
    /// Button.
    Confirm => ("Confirm", "पुष्टि करें"),
    /// Link.
    Cancel => ("Cancel", "रद्द"),
    /// Queue state.
    Paused => ("Paused", "रुकी हुई"),
    /// Heading of the Gateways page's live list.
    HealthChanges => ("Health changes since this page opened", "इस पृष्ठ के खुलने के बाद स्वास्थ्य में बदलाव"),
    /// A live page missed updates the server no longer holds.
    LiveMissed => ("Live updates were missed: reload the page.", "लाइव अपडेट छूट गए: पृष्ठ फिर से लोड करें।"),
    /// Queue state.
    Flowing => ("Running", "चालू"),
    /// Queue fact.
    PausedSince => ("Paused since", "से रुकी"),
    /// Queue fact.
    LastRetried => ("Failed jobs last put back", "विफल काम अंतिम बार वापस रखे"),
    /// Queue fact.
    LastDrained => ("Last drained", "अंतिम बार खाली की"),
    /// Chart heading.
    WaitingLastHour => ("Jobs waiting, last hour (most per minute)", "प्रतीक्षारत काम, पिछला घंटा (प्रति मिनट अधिकतम)"),
    /// No samples.
    NoSamples => ("No samples yet.", "अभी कोई नमूना नहीं।"),
    /// A minute of the chart with no sample.
    NoSample => ("no sample", "कोई नमूना नहीं"),
    /// Broker silent.
    BrokerUnanswered => ("The broker did not answer.", "ब्रोकर ने उत्तर नहीं दिया।"),
    /// Count of jobs.
    Jobs => ("jobs", "काम"),
    /// Commission section.
    CommissionDaily => ("Net commission per day, last 30 days (bars in whole ₹)", "प्रति दिन शुद्ध कमीशन, पिछले 30 दिन (पूरे ₹ में)"),
    /// Commission section.
    CommissionLedger => ("Commission ledger", "कमीशन खाता"),
    /// Link.
    DownloadCsv => ("Download CSV", "CSV डाउनलोड करें"),
    /// Commission section.
    Payouts => ("Latest payouts", "नवीनतम भुगतान-निकासी"),
    /// Column and filter.
    EntryType => ("Entry", "प्रविष्टि"),
    /// Filter.
    AnyType => ("Any type", "कोई भी प्रकार"),
    /// Filter.
    FromDay => ("From (IST day)", "से (IST दिन)"),
    /// Filter.
    ToDay => ("To (IST day)", "तक (IST दिन)"),
    /// Column.
    BalanceEffect => ("Balance due moved by", "देय शेष में बदलाव"),
    /// Column and field.
    Reference => ("Reference", "संदर्भ"),
    /// Form.
    ManualSettlement => ("Record a manual settlement", "मैन्युअल निपटान दर्ज करें"),
    /// Field.
    AmountRupees => ("Amount (₹)", "राशि (₹)"),
    /// Field.
    Note => ("Note", "टिप्पणी"),
    /// Button.
    RecordSettlement => ("Record settlement", "निपटान दर्ज करें"),
    /// Result.
    SettlementRecorded => ("Settlement recorded.", "निपटान दर्ज हो गया।"),
    /// Refusal.
    SettlementRefused => ("The settlement was not recorded", "निपटान दर्ज नहीं हुआ"),
    /// Refusal.
    SettlementInvalid => ("Give a merchant id and an amount in rupees with at most two decimals.", "व्यापारी आईडी और अधिकतम दो दशमलव वाली रुपये में राशि दें।"),
    /// Page.
    Whatsapp => ("WhatsApp", "व्हाट्सऐप"),
    /// Section.
    WhatsappUsage => ("This merchant's usage, last 30 days", "इस व्यापारी का उपयोग, पिछले 30 दिन"),
    /// Section.
    UsageAcrossMerchants => ("Usage across merchants", "सभी व्यापारियों का उपयोग"),
    /// Period.
    Today => ("Today", "आज"),
    /// Period.
    ThisMonth => ("This month", "इस महीने"),
    /// Period.
    ChosenDays => ("Chosen days", "चुने हुए दिन"),
    /// Field.
    Period => ("Period", "अवधि"),
    /// Button.
    Show => ("Show", "दिखाएँ"),
    /// Figure: given up among sent or given up.
    FailureRate => ("Failure rate", "विफलता दर"),
    /// Row.
    Total => ("Total", "कुल"),
    /// Section: counts are events on their IST day.
    UsageByTemplate => ("By template (each queueing, sending and giving up on its IST day)", "टेम्पलेट के अनुसार (हर कतार, भेजना और छोड़ना अपने IST दिन पर)"),
    /// Section.
    TopMerchants => ("Merchants that queued most", "सबसे अधिक कतार में डालने वाले व्यापारी"),
    /// Section.
    UsageByType => ("By type: messages first queued in the period, where they stand now", "प्रकार के अनुसार: इस अवधि में पहली बार कतार में डाले गए संदेश, अभी की स्थिति"),
    /// Column.
    NotificationType => ("Type", "प्रकार"),
    /// Refusal.
    UsageDaysInvalid => ("Choose a first and a last IST day, at most 366 days apart.", "पहला और अंतिम IST दिन चुनें, अधिकतम 366 दिन के अंतर पर।"),
    /// Hint.
    ChooseMerchantForUsage => ("Filter by a merchant to see its usage.", "उपयोग देखने के लिए किसी व्यापारी से फ़िल्टर करें।"),
    /// Column and filter.
    Template => ("Template", "टेम्पलेट"),
    /// Filter.
    Contains => ("Contains", "शामिल है"),
    /// Column.
    Recipient => ("Recipient", "प्राप्तकर्ता"),
    /// Column.
    Attempts => ("Attempts", "प्रयास"),
    /// Column.
    LastError => ("Last error", "अंतिम त्रुटि"),
    /// Column and state.
    Queued => ("Queued", "कतार में"),
    /// Column.
    Sent => ("Sent", "भेजे गए"),
    /// Column.
    Day => ("Day", "दिन"),
    /// Button.
    Resend => ("Resend", "फिर भेजें"),
    /// Result.
    Resent => ("Queued again.", "फिर से कतार में लगा दिया।"),
    /// Refusal.
    NotResendable => ("Only a message or delivery that was given up on can be sent again.", "केवल छोड़ा गया संदेश या डिलीवरी ही फिर भेजी जा सकती है।"),
    /// Pagination.
    Newer => ("Newer", "नए"),
    /// Page.
    Deliveries => ("Webhook deliveries", "वेबहुक डिलीवरी"),
    /// Count.
    DeliveriesCount => ("Deliveries", "डिलीवरी"),
    /// Column.
    Endpoint => ("Endpoint", "एंडपॉइंट"),
    /// A delivery of a test event.
    TestEvent => ("Test event (no payment)", "परीक्षण इवेंट (कोई भुगतान नहीं)"),
    /// Column.
    Outcome => ("Outcome", "परिणाम"),
    /// Column.
    Response => ("Response", "उत्तर"),
    /// Heading.
    Body => ("Body sent", "भेजी गई सामग्री"),
    /// Page.
    Refunds => ("Refunds", "रिफ़ंड"),
    /// Column.
    Refund => ("Refund", "रिफ़ंड"),
    /// Column.
    Requested => ("Requested", "अनुरोधित"),
    /// Column.
    CommissionReversed => ("Commission reversed", "कमीशन वापस"),
    /// Fact.
    MerchantRefundId => ("Merchant's refund id", "व्यापारी की रिफ़ंड आईडी"),
    /// Fact.
    PspRefundId => ("Provider's refund id", "प्रदाता की रिफ़ंड आईडी"),
    /// Fact.
    FailureReason => ("Why it failed", "विफलता का कारण"),
    /// Fact.
    CommissionTreatment => ("Commission treatment", "कमीशन व्यवहार"),
    /// Fact.
    Reason => ("Reason", "कारण"),
    /// Fact.
    Updated => ("Last changed", "अंतिम परिवर्तन"),
    /// Page.
    Alerts => ("Alerts", "अलर्ट"),
    /// Section.
    RecentAlerts => ("Recent raises and resolutions", "हाल में उठाए और सुलझाए गए"),
    /// Explanation.
    AlertsReadOnly => ("Alerts are raised and resolved by the evaluator as conditions start and stop; acknowledging one tells the others someone is on it.", "शर्तें शुरू और बंद होने पर मूल्यांकक अलर्ट उठाता और सुलझाता है; स्वीकार करने से बाकी लोगों को पता चलता है कि कोई इसे देख रहा है।"),
    /// Button: acknowledge a firing alert.
    Acknowledge => ("Acknowledge", "स्वीकार करें"),
    /// Badge: a firing alert a person has acknowledged.
    Acknowledged => ("Acknowledged", "स्वीकृत"),
    /// Column and filter.
    Kind => ("Kind", "प्रकार"),
    /// Column.
    Summary => ("Summary", "सारांश"),
    /// Alert state.
    Raised => ("Raised", "उठाया गया"),
    /// Alert state.
    Resolved => ("Resolved", "सुलझाया गया"),
    /// Page.
    Audit => ("Audit log", "ऑडिट लॉग"),
    /// Column.
    Subject => ("Subject", "विषय"),
    /// Column.
    Details => ("Details", "विवरण"),
    /// Audit detail.
    Before => ("Before", "पहले"),
    /// Audit detail.
    After => ("After", "बाद में"),
    /// Explanation.
    AuditExportHint => ("A signed export of the whole log for auditors' tools is made with `lightspeed audit export`.", "ऑडिटर के टूल के लिए पूरे लॉग का हस्ताक्षरित निर्यात `lightspeed audit export` से बनता है।"),
    /// Page.
    Projections => ("Projections", "प्रोजेक्शन"),
    /// Column.
    Version => ("Version", "संस्करण"),
    /// Column.
    LagEvents => ("Lag (events)", "विलंब (इवेंट)"),
    /// Column.
    LagMs => ("Lag (ms)", "विलंब (ms)"),
    /// Column.
    LagMeasured => ("Lag measured", "विलंब मापा गया"),
    /// Column.
    Checkpoint => ("Checkpoint", "चेकपॉइंट"),
    /// Lag never measured.
    NotMeasured => ("not measured", "मापा नहीं गया"),
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
    /// Figure: the gateways' last outcomes.
    RecentOutcomes => ("Each gateway's recent outcomes", "हर गेटवे के हाल के परिणाम"),
    /// Figure: every outcome.
    EverOutcomes => ("Ever", "अब तक"),
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
    AddGateway => ("Add a gateway", "गेटवे जोड़ें"),
    /// Button.
    Add => ("Add", "जोड़ें"),
    /// Add gateway form.
    Environment => ("Environment", "परिवेश"),
    /// Add gateway form.
    BaseUrl => ("API host (optional)", "एपीआई होस्ट (वैकल्पिक)"),
    /// Add gateway form.
    MonthlyLimitRupees => ("Monthly limit in ₹ (optional)", "मासिक सीमा ₹ में (वैकल्पिक)"),
    /// Add gateway form.
    Credentials => ("Credentials: sealed at once and never shown again. Fill in the chosen provider's fields only.", "क्रेडेंशियल: तुरंत सील किए जाते हैं और फिर कभी नहीं दिखाए जाते। केवल चुने गए प्रदाता के फ़ील्ड भरें।"),
    /// Add gateway form.
    MerchantId => ("Merchant id", "व्यापारी आईडी"),
    /// Result.
    GatewayAdded => ("Gateway added; its credentials are sealed.", "गेटवे जोड़ा गया; इसके क्रेडेंशियल सील हैं।"),
    /// Result of a refused form.
    NotSaved => ("Not saved", "सहेजा नहीं गया"),
    /// Checkout settings form.
    RoutingMode => ("Routing", "रूटिंग"),
    /// Routing mode.
    RoutingSmart => ("Smart: priority, then success rate", "स्मार्ट: प्राथमिकता, फिर सफलता दर"),
    /// Routing mode.
    RoutingRoundRobin => ("Round robin", "बारी-बारी से"),
    /// Checkout settings form.
    SkipResting => ("Skip resting gateways", "विराम वाले गेटवे छोड़ें"),
    /// Checkout settings form.
    RestSeconds => ("Rest after a failure, in seconds", "विफलता के बाद विराम, सेकंड में"),
    /// Checkout settings form.
    DefaultRpmCap => ("Default cap, requests per minute (optional)", "डिफ़ॉल्ट सीमा, प्रति मिनट अनुरोध (वैकल्पिक)"),
    /// Button.
    SaveCheckoutSettings => ("Save checkout settings", "चेकआउट सेटिंग्स सहेजें"),
    /// Result.
    CheckoutSaved => ("Checkout settings saved.", "चेकआउट सेटिंग्स सहेजी गईं।"),
    /// Column.
    Url => ("URL", "यूआरएल"),
    /// Column.
    Description => ("Description", "विवरण"),
    /// Column.
    EventTypes => ("Events", "इवेंट"),
    /// Endpoint state.
    DisabledForFailing => ("disabled for failing", "विफलता के कारण निष्क्रिय"),
    /// Link.
    PrintableStatement => ("printable", "छापने योग्य"),
    /// Key regeneration result.
    KeysShownOnce => ("New API keys. The salt is shown only now: copy it before leaving this page.", "नई एपीआई कुंजियाँ। सॉल्ट केवल अभी दिखाया गया है: यह पेज छोड़ने से पहले इसे कॉपी करें।"),
    /// Key regeneration result.
    ClientKey => ("Client key", "क्लाइंट कुंजी"),
    /// Key regeneration result.
    ClientSalt => ("Client salt", "क्लाइंट सॉल्ट"),
    /// Confirmation.
    RegenerateKeysExplained => ("The merchant's current key and salt stop working at once; their systems need the new ones.", "व्यापारी की मौजूदा कुंजी और सॉल्ट तुरंत काम करना बंद कर देते हैं; उनके सिस्टम को नई चाहिए।"),
    /// Button.
    Rebuild => ("Rebuild", "पुनर्निर्माण"),
    /// Confirmation.
    RebuildExplained => ("A new version is built from the whole log beside the one readers see, then swapped in; the current version keeps serving meanwhile. A large log takes a while and loads the database.", "पूरे लॉग से एक नया संस्करण पढ़ने वालों वाले संस्करण के बगल में बनता है, फिर बदल दिया जाता है; तब तक मौजूदा संस्करण सेवा देता रहता है। बड़ा लॉग समय लेता है और डेटाबेस पर भार डालता है।"),
    /// Section.
    RebuildProgress => ("Rebuilds started here", "यहाँ शुरू किए गए पुनर्निर्माण"),
    /// Result.
    RebuildStarted => ("Rebuild started.", "पुनर्निर्माण शुरू हुआ।"),
    /// Refusal.
    RebuildRunning => ("A rebuild of this projection is already running.", "इस प्रोजेक्शन का पुनर्निर्माण पहले से चल रहा है।"),
    /// Rebuild state.
    RebuildFinished => ("finished", "पूरा हुआ"),
    /// Rebuild state.
    RebuildFailed => ("failed", "विफल"),
    /// Rebuild state.
    RebuildRunningState => ("running", "चल रहा है"),
    /// Live pages.
    SignedOutLive => ("You are signed out; this page no longer updates. Sign in again.", "आप साइन आउट हो गए हैं; यह पेज अब अपडेट नहीं होता। फिर से साइन इन करें।"),
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
