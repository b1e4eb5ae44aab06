//! Deterministic, seeded generator of synthetic B2B leads with labelled duplicates.
//!
//! Shared by `tests/evaluation.rs`, `examples/evaluate.rs` and `benches/matching.rs` through
//! `#[path]`. Everything is derived from one SplitMix64 seed, so a (seed, size) pair always yields
//! the same leads. No external data: name, street and company vocabularies are inline, and the
//! nickname variants used to create duplicates are a hand-written list independent of the
//! crate's nickname table (so the evaluation is not circular).
//!
//! Each entity (a real person) yields 1–5 records through lead channels (web form, event badge
//! scan, partner list, phone-only chat), with typos, nicknames, company-suffix variants
//! (normalized by this generator's own company-key function), reformatted phones (normalized by
//! its own E.164 function), Gmail dots/`+tags`/googlemail, work → free-mail changes, missing
//! fields and occasional job changes. Hard negatives are separate entities: namesakes at other
//! companies, relatives at the same company, and very common names (John Smith) everywhere.
#![allow(dead_code)]

use std::collections::HashSet;

use leadflow_core::matching::Record;

/// SplitMix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

/// Zipf-like sampler over `n` ranks: P(rank r) ∝ 1 / (r + 1)^s.
pub struct Zipf {
    cum: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut cum = Vec::with_capacity(n);
        let mut acc = 0.0;
        for r in 0..n {
            acc += 1.0 / ((r + 1) as f64).powf(s);
            cum.push(acc);
        }
        Zipf { cum }
    }
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cum.last().copied().unwrap_or(0.0);
        let x = rng.unit() * total;
        self.cum.partition_point(|&c| c < x).min(self.cum.len() - 1)
    }
}

const MALE: &[&str] = &[
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Christopher",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Donald",
    "Steven",
    "Paul",
    "Andrew",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Timothy",
    "Ronald",
    "Edward",
    "Jason",
    "Jeffrey",
    "Ryan",
    "Jacob",
    "Gary",
    "Nicholas",
    "Eric",
    "Jonathan",
    "Stephen",
    "Larry",
    "Justin",
    "Scott",
    "Brandon",
    "Benjamin",
    "Samuel",
    "Gregory",
    "Alexander",
    "Patrick",
    "Frank",
    "Raymond",
    "Jack",
    "Dennis",
    "Jerry",
    "Tyler",
    "Aaron",
    "Jose",
    "Adam",
    "Nathan",
    "Henry",
    "Peter",
    "Zachary",
    "Douglas",
    "Kyle",
    "Noah",
    "Ethan",
    "Jeremy",
    "Walter",
    "Christian",
    "Keith",
    "Roger",
    "Terry",
    "Austin",
    "Sean",
    "Gerald",
    "Carl",
    "Harold",
    "Dylan",
    "Arthur",
    "Lawrence",
    "Jordan",
    "Jesse",
    "Bryan",
    "Bruce",
    "Gabriel",
    "Logan",
    "Albert",
    "Alan",
    "Eugene",
    "Russell",
    "Vincent",
    "Philip",
    "Bradley",
    "Roy",
    "Ralph",
    "Randy",
    "Wayne",
    "Howard",
    "Carlos",
    "Victor",
    "Martin",
    "Ravi",
    "Wei",
    "Hiroshi",
    "Arjun",
    "Mohammed",
    "Ahmed",
    "Luca",
    "Pierre",
    "Hans",
    "Lars",
    "Sven",
    "Mateo",
    "Oliver",
    "Lukas",
    "Felix",
    "Jan",
    "Omar",
    "Rahul",
    "Kenji",
    "Diego",
    "Marco",
    "Stefan",
    "Tobias",
    "Julien",
    "Antoine",
    "Florian",
];

const FEMALE: &[&str] = &[
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Margaret",
    "Sandra",
    "Ashley",
    "Kimberly",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Dorothy",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Rebecca",
    "Sharon",
    "Laura",
    "Cynthia",
    "Kathleen",
    "Amy",
    "Angela",
    "Shirley",
    "Anna",
    "Brenda",
    "Pamela",
    "Emma",
    "Nicole",
    "Helen",
    "Samantha",
    "Katherine",
    "Christine",
    "Rachel",
    "Carolyn",
    "Janet",
    "Catherine",
    "Maria",
    "Heather",
    "Diane",
    "Ruth",
    "Julie",
    "Olivia",
    "Joyce",
    "Virginia",
    "Victoria",
    "Kelly",
    "Lauren",
    "Christina",
    "Joan",
    "Evelyn",
    "Judith",
    "Megan",
    "Andrea",
    "Cheryl",
    "Hannah",
    "Jacqueline",
    "Martha",
    "Gloria",
    "Teresa",
    "Ann",
    "Madison",
    "Frances",
    "Kathryn",
    "Janice",
    "Jean",
    "Abigail",
    "Alice",
    "Sophia",
    "Grace",
    "Denise",
    "Amber",
    "Doris",
    "Marilyn",
    "Danielle",
    "Beverly",
    "Isabella",
    "Theresa",
    "Diana",
    "Natalie",
    "Brittany",
    "Charlotte",
    "Marie",
    "Kayla",
    "Alexis",
    "Lori",
    "Priya",
    "Mei",
    "Yuki",
    "Fatima",
    "Ingrid",
    "Sofia",
    "Elena",
    "Anja",
    "Claire",
    "Chloe",
    "Camille",
    "Lea",
    "Julia",
    "Ananya",
    "Aiko",
    "Leila",
    "Nadia",
    "Greta",
    "Astrid",
    "Ines",
    "Lucia",
    "Valentina",
];

/// Generator's own nickname variants (formal → nicknames), independent of `data/names.csv`.
const NICKS: &[(&str, &[&str])] = &[
    ("James", &["Jim", "Jimmy", "Jamie"]),
    ("Robert", &["Bob", "Rob", "Bobby", "Robbie"]),
    ("John", &["Johnny", "Jack"]),
    ("Michael", &["Mike", "Mikey", "Mick"]),
    ("David", &["Dave", "Davey"]),
    ("William", &["Bill", "Will", "Billy", "Liam"]),
    ("Richard", &["Rick", "Dick", "Rich", "Ricky"]),
    ("Joseph", &["Joe", "Joey"]),
    ("Thomas", &["Tom", "Tommy"]),
    ("Charles", &["Chuck", "Charlie"]),
    ("Christopher", &["Chris", "Kit"]),
    ("Daniel", &["Dan", "Danny"]),
    ("Matthew", &["Matt"]),
    ("Anthony", &["Tony"]),
    ("Donald", &["Don", "Donnie"]),
    ("Steven", &["Steve"]),
    ("Andrew", &["Andy", "Drew"]),
    ("Joshua", &["Josh"]),
    ("Kenneth", &["Ken", "Kenny"]),
    ("Timothy", &["Tim"]),
    ("Ronald", &["Ron", "Ronnie"]),
    ("Edward", &["Ed", "Ted", "Eddie"]),
    ("Jeffrey", &["Jeff"]),
    ("Jacob", &["Jake"]),
    ("Nicholas", &["Nick", "Nicky"]),
    ("Jonathan", &["Jon"]),
    ("Stephen", &["Steve"]),
    ("Benjamin", &["Ben", "Benny"]),
    ("Samuel", &["Sam", "Sammy"]),
    ("Gregory", &["Greg"]),
    ("Alexander", &["Alex", "Sandy"]),
    ("Patrick", &["Pat", "Paddy"]),
    ("Raymond", &["Ray"]),
    ("Nathan", &["Nate"]),
    ("Henry", &["Hank", "Harry"]),
    ("Peter", &["Pete"]),
    ("Zachary", &["Zach"]),
    ("Douglas", &["Doug"]),
    ("Walter", &["Walt"]),
    ("Gerald", &["Jerry", "Gerry"]),
    ("Harold", &["Harry", "Hal"]),
    ("Lawrence", &["Larry"]),
    ("Gabriel", &["Gabe"]),
    ("Albert", &["Al", "Bert"]),
    ("Eugene", &["Gene"]),
    ("Russell", &["Russ"]),
    ("Vincent", &["Vince", "Vinny"]),
    ("Philip", &["Phil"]),
    ("Bradley", &["Brad"]),
    ("Patricia", &["Pat", "Patty", "Trish"]),
    ("Jennifer", &["Jen", "Jenny"]),
    ("Elizabeth", &["Liz", "Beth", "Betty", "Lizzie", "Eliza"]),
    ("Barbara", &["Barb", "Babs"]),
    ("Susan", &["Sue", "Susie"]),
    ("Jessica", &["Jess", "Jessie"]),
    ("Margaret", &["Peggy", "Maggie", "Meg"]),
    ("Sandra", &["Sandy"]),
    ("Kimberly", &["Kim"]),
    ("Amanda", &["Mandy"]),
    ("Dorothy", &["Dot", "Dottie"]),
    ("Melissa", &["Missy", "Mel"]),
    ("Deborah", &["Debbie", "Deb"]),
    ("Stephanie", &["Steph"]),
    ("Rebecca", &["Becky", "Becca"]),
    ("Cynthia", &["Cindy"]),
    ("Kathleen", &["Kathy", "Kate"]),
    ("Angela", &["Angie"]),
    ("Pamela", &["Pam"]),
    ("Nicole", &["Nikki"]),
    ("Samantha", &["Sam", "Sammy"]),
    ("Katherine", &["Kate", "Katie", "Kathy", "Kat"]),
    ("Christine", &["Chris", "Chrissy"]),
    ("Catherine", &["Cathy", "Cat"]),
    ("Virginia", &["Ginny"]),
    ("Victoria", &["Vicky", "Tori"]),
    ("Christina", &["Tina", "Chris"]),
    ("Judith", &["Judy"]),
    ("Jacqueline", &["Jackie"]),
    ("Teresa", &["Terry", "Tess"]),
    ("Frances", &["Fran"]),
    ("Abigail", &["Abby"]),
    ("Danielle", &["Dani"]),
    ("Beverly", &["Bev"]),
    ("Isabella", &["Bella", "Izzy"]),
    ("Theresa", &["Tess", "Terri"]),
    ("Alexis", &["Lexi"]),
    ("Valentina", &["Vale"]),
];

const SURNAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
    "Powell",
    "Jenkins",
    "Perry",
    "Russell",
    "Sullivan",
    "Bell",
    "Coleman",
    "Butler",
    "Henderson",
    "Barnes",
    "Gonzales",
    "Fisher",
    "Vasquez",
    "Simmons",
    "Romero",
    "Jordan",
    "Patterson",
    "Alexander",
    "Hamilton",
    "Graham",
    "Reynolds",
    "Griffin",
    "Wallace",
    "Moreno",
    "West",
    "Cole",
    "Hayes",
    "Bryant",
    "Herrera",
    "Gibson",
    "Ellis",
    "Tran",
    "Medina",
    "Aguilar",
    "Stevens",
    "Murray",
    "Ford",
    "Castro",
    "Marshall",
    "Owens",
    "Harrison",
    "Fernandez",
    "McDonald",
    "Woods",
    "Washington",
    "Kennedy",
    "Wells",
    "Vargas",
    "Henry",
    "Chen",
    "Freeman",
    "Webb",
    "Tucker",
    "Guzman",
    "Burns",
    "Crawford",
    "Olson",
    "Simpson",
    "Porter",
    "Hunter",
    "Gordon",
    "Mendez",
    "Silva",
    "Shaw",
    "Snyder",
    "Mason",
    "Dixon",
    "Munoz",
    "Hunt",
    "Hicks",
    "Holmes",
    "Palmer",
    "Wagner",
    "Black",
    "Robertson",
    "Boyd",
    "Rose",
    "Stone",
    "Salazar",
    "Fox",
    "Warren",
    "Mills",
    "Meyer",
    "Rice",
    "Schmidt",
    "Garza",
    "Daniels",
    "Ferguson",
    "Nichols",
    "Stephens",
    "Soto",
    "Weaver",
    "Ryan",
    "Gardner",
    "Payne",
    "Grant",
    "Dunn",
    "Kelley",
    "Spencer",
    "Hawkins",
    "Arnold",
    "Pierce",
    "Vazquez",
    "Hansen",
    "Peters",
    "Santos",
    "Hart",
    "Bradley",
    "Knight",
    "Elliott",
    "Cunningham",
    "Duncan",
    "Armstrong",
    "Hudson",
    "Carroll",
    "Lane",
    "Riley",
    "Andrews",
    "Alvarado",
    "Ray",
    "Delgado",
    "Berry",
    "Perkins",
    "Hoffman",
    "Johnston",
    "Matthews",
    "Pena",
    "Richards",
    "Contreras",
    "Willis",
    "Carpenter",
    "Lawrence",
    "Sandoval",
    "Mueller",
    "Schneider",
    "Fischer",
    "Weber",
    "Becker",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Yamamoto",
    "Tanaka",
    "Suzuki",
    "Singh",
    "Kumar",
    "Sharma",
    "Rossi",
    "Russo",
    "Dubois",
    "Moreau",
    "Jansen",
    "Nielsen",
    "Larsen",
    "Novak",
    "Kowalski",
    "Nowak",
    "O'Brien",
    "O'Connor",
    "Schulz",
    "Wolf",
    "Laurent",
    "Lefebvre",
    "Bernard",
    "Petit",
    "Ferrari",
];

const SUR_HEAD: &[&str] = &[
    "Ash", "Black", "Cald", "Dun", "Fair", "Hol", "Kings", "Lang", "Mar", "Nor", "Pem", "Rad", "Stan", "Thorn", "Wex",
    "Ald", "Bex", "Cor", "Dal", "Fen", "Gal", "Har", "Kel", "Lin", "Mor", "Pen", "Ros", "Sel", "Tal", "Wim",
];
const SUR_TAIL: &[&str] = &[
    "ford", "well", "ton", "by", "worth", "ley", "field", "man", "son", "ridge", "hurst", "wood", "stone", "more",
    "dale", "ham", "ington", "ers", "sby", "wick", "low", "brook", "combe", "ner", "ski", "berg", "mann", "ez", "ini",
    "ova",
];

const COMMON_NAMES: &[(&str, &str)] = &[
    ("John", "Smith"),
    ("Michael", "Johnson"),
    ("David", "Brown"),
    ("Mary", "Williams"),
    ("James", "Jones"),
    ("Robert", "Garcia"),
    ("Jennifer", "Miller"),
    ("Maria", "Garcia"),
    ("David", "Smith"),
    ("Michael", "Smith"),
];

const CO_A: &[&str] = &[
    "blue",
    "river",
    "north",
    "apex",
    "quantum",
    "summit",
    "pine",
    "vertex",
    "harbor",
    "cedar",
    "atlas",
    "nova",
    "bright",
    "iron",
    "silver",
    "orbit",
    "pixel",
    "lumen",
    "delta",
    "echo",
    "granite",
    "falcon",
    "maple",
    "crimson",
    "polar",
    "solar",
    "vector",
    "willow",
    "zenith",
    "cobalt",
    "amber",
    "beacon",
    "clear",
    "eagle",
    "fusion",
    "golden",
    "horizon",
    "indigo",
    "jade",
    "keystone",
    "lighthouse",
    "meridian",
    "nimbus",
    "oak",
    "prairie",
    "redwood",
    "sierra",
    "tidal",
    "union",
    "vista",
];
const CO_B: &[&str] = &[
    "labs",
    "systems",
    "logistics",
    "foods",
    "health",
    "analytics",
    "capital",
    "software",
    "energy",
    "media",
    "robotics",
    "partners",
    "consulting",
    "networks",
    "dynamics",
    "works",
    "solutions",
    "industries",
    "ventures",
    "bio",
    "digital",
    "cloud",
    "security",
    "motors",
    "pharma",
    "studio",
    "group",
    "data",
    "retail",
    "telecom",
];
const LEGAL: &[&str] =
    &["Inc.", "Inc", "LLC", "Ltd", "Limited", "Corp.", "Corporation", "GmbH", "AG", "S.A.", "SAS", "PLC", "Co."];
const KEY_DRIFT: &[&str] = &["group", "technologies", "international", "holdings", "global"];

const STREETS: &[&str] = &[
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Market",
    "Mission",
    "Broadway",
    "High",
    "King",
    "Church",
    "Station",
    "Mill",
    "River",
    "Sunset",
    "Harbor",
    "Spring",
    "Center",
    "Union",
    "Franklin",
    "Jefferson",
    "Madison",
    "Grove",
    "Valley",
    "Ridge",
];
const STREET_TYPES: &[(&str, &str)] = &[
    ("Street", "St"),
    ("Avenue", "Ave"),
    ("Road", "Rd"),
    ("Boulevard", "Blvd"),
    ("Drive", "Dr"),
    ("Lane", "Ln"),
    ("Way", "Way"),
    ("Place", "Pl"),
];

struct Country {
    code: &'static str,
    dial: &'static str,
    national_digits: usize,
    tld: &'static str,
    cities: &'static [(&'static str, &'static str)],
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        dial: "1",
        national_digits: 10,
        tld: "com",
        cities: &[
            ("San Francisco", "941"),
            ("New York", "100"),
            ("Austin", "787"),
            ("Chicago", "606"),
            ("Seattle", "981"),
            ("Boston", "021"),
            ("Denver", "802"),
            ("Atlanta", "303"),
            ("Miami", "331"),
            ("Dallas", "752"),
            ("Portland", "972"),
            ("Phoenix", "850"),
            ("San Diego", "921"),
            ("Minneapolis", "554"),
            ("Raleigh", "276"),
        ],
    },
    Country {
        code: "GB",
        dial: "44",
        national_digits: 10,
        tld: "co.uk",
        cities: &[("London", "EC"), ("Manchester", "M"), ("Leeds", "LS"), ("Bristol", "BS")],
    },
    Country {
        code: "DE",
        dial: "49",
        national_digits: 10,
        tld: "de",
        cities: &[("Berlin", "10"), ("Munich", "80"), ("Hamburg", "20"), ("Cologne", "50")],
    },
    Country {
        code: "FR",
        dial: "33",
        national_digits: 9,
        tld: "fr",
        cities: &[("Paris", "750"), ("Lyon", "690"), ("Marseille", "130"), ("Lille", "590")],
    },
];

const FREE_MAIL: &[&str] =
    &["gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com"];

#[derive(Clone)]
struct Site {
    street_no: u32,
    street: &'static str,
    street_type: usize,
    city: &'static str,
    postal: String,
}

struct Company {
    key: String,
    words: Vec<String>,
    domain: String,
    website: String,
    country: usize,
    sites: Vec<Site>,
    switchboard: String,
    pattern: usize,
    locals: HashSet<String>,
}

#[derive(Clone)]
struct Person {
    first: String,
    last: String,
    company: usize,
    site: usize,
    work_local: String,
    alias_local: Option<String>,
    personal: Option<String>,
    direct: Option<String>,
    mobile: Option<String>,
}

/// Perturbation / channel labels of one generated record (bit flags, see [`KIND_NAMES`]).
pub mod kind {
    pub const NICKNAME: u32 = 1 << 0;
    pub const FIRST_TYPO: u32 = 1 << 1;
    pub const LAST_TYPO: u32 = 1 << 2;
    pub const JOB_CHANGE: u32 = 1 << 3;
    /// Free-mail address given instead of the work one.
    pub const PERSONAL_EMAIL: u32 = 1 << 4;
    /// Gmail dots / `+tag` / googlemail rewrite.
    pub const GMAIL_VARIANT: u32 = 1 << 5;
    /// Second work mailbox (alias) at the same domain.
    pub const EMAIL_ALIAS: u32 = 1 << 6;
    /// Phone is the company switchboard, not the person's line.
    pub const SWITCHBOARD: u32 = 1 << 7;
    pub const NO_EMAIL: u32 = 1 << 8;
    pub const NO_PHONE: u32 = 1 << 9;
    pub const NO_LAST_NAME: u32 = 1 << 10;
    pub const NO_COMPANY: u32 = 1 << 11;
    /// Company key lost/gained a word ("blue labs" → "blue" / "blue labs group").
    pub const COMPANY_DRIFT: u32 = 1 << 12;
    pub const COMPANY_TYPO: u32 = 1 << 13;
    pub const STREET_TYPO: u32 = 1 << 14;
    /// Phone shown in a national / 00 / spaced format (normalized back to E.164).
    pub const PHONE_REFORMAT: u32 = 1 << 15;
    /// Legal suffix in the display name ("Inc.", "GmbH", ...), removed by the key function.
    pub const COMPANY_SUFFIX: u32 = 1 << 16;
    pub const CHANNEL_WEB: u32 = 1 << 17;
    pub const CHANNEL_BADGE: u32 = 1 << 18;
    pub const CHANNEL_PARTNER: u32 = 1 << 19;
    pub const CHANNEL_CHAT: u32 = 1 << 20;
}

/// Names of the [`kind`] flags, in bit order.
pub const KIND_NAMES: &[(u32, &str)] = &[
    (kind::NICKNAME, "nickname"),
    (kind::FIRST_TYPO, "first-name typo"),
    (kind::LAST_TYPO, "last-name typo"),
    (kind::JOB_CHANGE, "job change"),
    (kind::PERSONAL_EMAIL, "free-mail instead of work"),
    (kind::GMAIL_VARIANT, "gmail dots/+tag/googlemail"),
    (kind::EMAIL_ALIAS, "work email alias"),
    (kind::SWITCHBOARD, "switchboard phone"),
    (kind::NO_EMAIL, "missing email"),
    (kind::NO_PHONE, "missing phone"),
    (kind::NO_LAST_NAME, "missing last name"),
    (kind::NO_COMPANY, "missing company"),
    (kind::COMPANY_DRIFT, "company key drift"),
    (kind::COMPANY_TYPO, "company typo"),
    (kind::STREET_TYPO, "street typo"),
    (kind::PHONE_REFORMAT, "phone reformatted"),
    (kind::COMPANY_SUFFIX, "company legal suffix"),
    (kind::CHANNEL_WEB, "channel: web form"),
    (kind::CHANNEL_BADGE, "channel: badge scan"),
    (kind::CHANNEL_PARTNER, "channel: partner list"),
    (kind::CHANNEL_CHAT, "channel: phone-only chat"),
];

/// What the generator knows about one record: perturbations and the identifying evidence it
/// carries (used to decide whether a labelled pair is resolvable from its fields at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    /// [`kind`] flags.
    pub kinds: u32,
    /// The mailbox behind the record's email (before Gmail rewriting), if any.
    pub mailbox: Option<String>,
    /// The person's own number (direct line or mobile) shown, if any; switchboards excluded.
    pub person_phone: Option<String>,
    /// First and last name both present.
    pub full_name: bool,
    /// Company index the record shows (company key, website, or a work email domain).
    pub org: Option<usize>,
    /// Postal code shown.
    pub postal: Option<String>,
}

impl Truth {
    /// Evidence a human reviewer could confirm two records of one person with: a shared mailbox,
    /// a shared personal phone, or the full name plus a shared organisation or postal code.
    pub fn evidence(&self, other: &Truth) -> Option<&'static str> {
        let shared = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        if shared(&self.mailbox, &other.mailbox) {
            Some("email")
        } else if shared(&self.person_phone, &other.person_phone) {
            Some("phone")
        } else if self.full_name && other.full_name {
            if self.org.is_some() && self.org == other.org {
                Some("name+company")
            } else if shared(&self.postal, &other.postal) {
                Some("name+postal")
            } else {
                None
            }
        } else {
            None
        }
    }
}

/// One generated lead with its ground-truth entity id.
#[derive(Debug, Clone)]
pub struct Lead {
    pub entity: u32,
    pub record: Record,
    pub truth: Truth,
}

/// Generation parameters.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub entities: usize,
    pub seed: u64,
}

fn ascii_lower(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphabetic()).map(|c| c.to_ascii_lowercase()).collect()
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// The generator's own company-key normalizer: lowercase, punctuation removed, legal suffixes
/// removed ("Blue Labs, Inc." → "blue labs").
pub fn company_key(display: &str) -> String {
    const SUFFIXES: &[&str] = &[
        "inc",
        "llc",
        "ltd",
        "limited",
        "corp",
        "corporation",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "plc",
        "co",
        "incorporated",
    ];
    let cleaned: String = display
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' {
                c.to_ascii_lowercase()
            } else if c == '.' {
                '\0'
            } else {
                ' '
            }
        })
        .filter(|&c| c != '\0')
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let mut end = words.len();
    while end > 1 && SUFFIXES.contains(&words[end - 1]) {
        end -= 1;
    }
    words[..end].join(" ")
}

/// The generator's own phone normalizer: any of the display formats below → E.164.
pub fn to_e164(display: &str, dial: &str) -> String {
    let digits: String = display.chars().filter(char::is_ascii_digit).collect();
    if display.trim_start().starts_with('+') {
        format!("+{digits}")
    } else if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("+{dial}{rest}")
    } else {
        format!("+{dial}{digits}")
    }
}

fn display_phone(rng: &mut Rng, e164: &str, country: &Country) -> String {
    let national = e164.strip_prefix('+').and_then(|d| d.strip_prefix(country.dial));
    let Some(national) = national else {
        return e164.to_owned();
    };
    let (a, b) = national.split_at(3.min(national.len()));
    match (country.code, rng.below(4)) {
        ("US", 0) => format!("({a}) {}-{}", &b[..3.min(b.len())], &b[3.min(b.len())..]),
        ("US", 1) => format!("{a}.{}.{}", &b[..3.min(b.len())], &b[3.min(b.len())..]),
        ("US", 2) => format!("+1 {a} {b}"),
        (_, 0) => format!("0{a} {b}"),
        (_, 1) => format!("00{} {national}", country.dial),
        (_, 2) => format!("+{} {a} {b}", country.dial),
        _ => e164.to_owned(),
    }
}

/// A national significant number: never starts with 0 (a trunk prefix) or 1, as in the real
/// numbering plans of the four countries. (Earlier versions drew any digit first, so "0…" numbers
/// were normalized differently depending on their display format: a generator artifact.)
fn national_number(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    s.push(char::from(b'2' + rng.below(8) as u8));
    s.push_str(&rng.digits(n.saturating_sub(1)));
    s
}

fn typo(rng: &mut Rng, s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 3 {
        return s.to_owned();
    }
    let i = 1 + rng.below(chars.len() - 1);
    let mut out = chars.clone();
    match rng.below(4) {
        0 => {
            let c = char::from(b'a' + rng.below(26) as u8);
            out[i] = c;
        }
        1 => {
            out.remove(i);
        }
        2 => out.insert(i, chars[i]),
        _ => {
            if i + 1 < out.len() {
                out.swap(i, i + 1);
            } else {
                out.swap(i - 1, i);
            }
        }
    }
    let t: String = out.into_iter().collect();
    title(&t)
}

fn nicknames_of(first: &str) -> &'static [&'static str] {
    NICKS.iter().find(|(f, _)| *f == first).map(|(_, n)| *n).unwrap_or(&[])
}

fn same_or_nick(a: &str, b: &str) -> bool {
    a == b || nicknames_of(a).contains(&b) || nicknames_of(b).contains(&a)
}

struct World {
    rng: Rng,
    companies: Vec<Company>,
    company_keys: HashSet<String>,
    company_zipf: Zipf,
    first_zipf: Zipf,
    last_zipf: Zipf,
    personal_used: HashSet<String>,
    people: Vec<Person>,
}

impl World {
    fn new_company(&mut self) -> Company {
        let rng = &mut self.rng;
        let mut words = vec![(*rng.pick(CO_A)).to_owned()];
        if rng.chance(0.85) {
            words.push((*rng.pick(CO_B)).to_owned());
        }
        let mut key = words.join(" ");
        while self.company_keys.contains(&key) {
            // Disambiguate like real companies do: another word or a surname.
            let extra =
                if rng.chance(0.5) { ascii_lower(rng.pick::<&str>(SURNAMES)) } else { (*rng.pick(CO_A)).to_owned() };
            words.insert(0, extra);
            key = words.join(" ");
        }
        self.company_keys.insert(key.clone());
        let country_idx = match rng.below(10) {
            0 => 1,
            1 => 2,
            2 => 3,
            _ => 0,
        };
        let country = &COUNTRIES[country_idx];
        let compact: String = key.chars().filter(|c| *c != ' ').collect();
        let tld = if rng.chance(0.7) { country.tld } else { *rng.pick(&["com", "io", "net", "co"]) };
        let domain = format!("{compact}.{tld}");
        let website = if rng.chance(0.9) { domain.clone() } else { format!("{}.com", words[0].replace(' ', "")) };
        let n_sites = 1 + usize::from(rng.chance(0.3)) + usize::from(rng.chance(0.1));
        let sites = (0..n_sites)
            .map(|_| {
                let (city, pfx) = *rng.pick(country.cities);
                let postal = match country.code {
                    "GB" => format!(
                        "{pfx}{} {}{}{}",
                        1 + rng.below(20),
                        rng.below(10),
                        char::from(b'A' + rng.below(26) as u8),
                        char::from(b'A' + rng.below(26) as u8)
                    ),
                    "DE" => format!("{pfx}{}", rng.digits(3)),
                    _ => format!("{pfx}{}", rng.digits(2)),
                };
                Site {
                    street_no: 1 + rng.below(2000) as u32,
                    street: rng.pick::<&str>(STREETS),
                    street_type: rng.below(STREET_TYPES.len()),
                    city,
                    postal,
                }
            })
            .collect();
        let switchboard = format!("+{}{}", country.dial, national_number(rng, country.national_digits));
        Company {
            key,
            words,
            domain,
            website,
            country: country_idx,
            sites,
            switchboard,
            pattern: rng.below(6),
            locals: HashSet::new(),
        }
    }

    fn random_first(&mut self) -> String {
        let list = if self.rng.chance(0.5) { MALE } else { FEMALE };
        let i = self.first_zipf.sample(&mut self.rng) % list.len();
        list[i].to_owned()
    }

    fn random_last(&mut self) -> String {
        if self.rng.chance(0.5) {
            let h = *self.rng.pick(SUR_HEAD);
            let t = *self.rng.pick(SUR_TAIL);
            format!("{h}{t}")
        } else {
            SURNAMES[self.last_zipf.sample(&mut self.rng)].to_owned()
        }
    }

    fn work_local(&mut self, company: usize, first: &str, last: &str, pattern: usize) -> String {
        let (f, l) = (ascii_lower(first), ascii_lower(last));
        let fi = &f[..1.min(f.len())];
        let li = &l[..1.min(l.len())];
        let base = match pattern {
            0 | 1 => format!("{f}.{l}"),
            2 => format!("{fi}{l}"),
            3 => f.clone(),
            4 => format!("{f}{li}"),
            _ => format!("{f}_{l}"),
        };
        let locals = &mut self.companies[company].locals;
        let mut local = base.clone();
        let mut n = 2;
        while locals.contains(&local) {
            local = format!("{base}{n}");
            n += 1;
        }
        locals.insert(local.clone());
        local
    }

    fn make_person(&mut self, first: String, last: String, company: usize) -> Person {
        let site = self.rng.below(self.companies[company].sites.len());
        let pattern = self.companies[company].pattern;
        let work_local = self.work_local(company, &first, &last, pattern);
        let alias_local =
            if self.rng.chance(0.03) { Some(self.work_local(company, &first, &last, (pattern + 2) % 6)) } else { None };
        let personal = if self.rng.chance(0.5) {
            let (f, l) = (ascii_lower(&first), ascii_lower(&last));
            let provider = *self.rng.pick(FREE_MAIL);
            let base = match self.rng.below(4) {
                0 => format!("{f}.{l}"),
                1 => format!("{f}{l}"),
                2 => format!("{f}.{l}{}", self.rng.digits(2)),
                _ => format!("{f}{}{}", &l[..1.min(l.len())], self.rng.digits(4)),
            };
            let mut addr = format!("{base}@{provider}");
            // Providers refuse an address whose canonical form is taken (Gmail ignores dots).
            let canonical = |a: &str| {
                if a.ends_with("@gmail.com") {
                    a.replace('.', "").replace("@gmailcom", "@gmail.com")
                } else {
                    a.to_owned()
                }
            };
            while self.personal_used.contains(&canonical(&addr)) {
                addr = format!("{base}{}@{provider}", self.rng.digits(3));
            }
            self.personal_used.insert(canonical(&addr));
            Some(addr)
        } else {
            None
        };
        let country = &COUNTRIES[self.companies[company].country];
        let direct = self
            .rng
            .chance(0.6)
            .then(|| format!("+{}{}", country.dial, national_number(&mut self.rng, country.national_digits)));
        let mobile = self
            .rng
            .chance(0.5)
            .then(|| format!("+{}{}", country.dial, national_number(&mut self.rng, country.national_digits)));
        Person { first, last, company, site, work_local, alias_local, personal, direct, mobile }
    }

    fn company_display(&mut self, company: usize) -> String {
        let c = &self.companies[company];
        let mut name = c.words.iter().map(|w| title(w)).collect::<Vec<_>>().join(" ");
        if self.rng.chance(0.15) {
            name = name.to_uppercase();
        }
        if self.rng.chance(0.6) {
            let sep = if self.rng.chance(0.3) { ", " } else { " " };
            name = format!("{name}{sep}{}", self.rng.pick(LEGAL));
        }
        name
    }

    fn gmail_variant(&mut self, addr: &str) -> String {
        let Some((local, domain)) = addr.split_once('@') else {
            return addr.to_owned();
        };
        if domain != "gmail.com" {
            return addr.to_owned();
        }
        let mut local = local.to_owned();
        let mut domain = domain.to_owned();
        if self.rng.chance(0.3) {
            local = if local.contains('.') {
                local.replace('.', "")
            } else if local.len() > 2 {
                format!("{}.{}", &local[..1], &local[1..])
            } else {
                local
            };
        }
        if self.rng.chance(0.2) {
            local = format!("{local}+{}", self.rng.pick(&["news", "crm", "events", "work"]));
        }
        if self.rng.chance(0.15) {
            domain = "googlemail.com".to_owned();
        }
        format!("{local}@{domain}")
    }

    /// One record of `p` through a random channel, with perturbations.
    fn record_of(&mut self, p: &Person, mutate: bool) -> (Record, Truth) {
        let mut p = p.clone();
        let mut t = Truth::default();
        // Job change: a later record of the same person at another company.
        if mutate && self.rng.chance(0.02) {
            let c = self.company_zipf.sample(&mut self.rng) % self.companies.len();
            if c != p.company {
                t.kinds |= kind::JOB_CHANGE;
                let moved = self.make_person(p.first.clone(), p.last.clone(), c);
                p.company = c;
                p.site = moved.site;
                p.work_local = moved.work_local;
                p.direct = moved.direct;
            }
        }
        let rng_channel = self.rng.below(100);
        let mut r = Record::default();
        let company = p.company;
        let country = &COUNTRIES[self.companies[company].country];
        let site = self.companies[company].sites[p.site].clone();

        let mut first = p.first.clone();
        let mut last = p.last.clone();
        if mutate {
            let nicks = nicknames_of(&p.first);
            if !nicks.is_empty() && self.rng.chance(0.25) {
                first = (*self.rng.pick(nicks)).to_owned();
                t.kinds |= kind::NICKNAME;
            }
            if self.rng.chance(0.04) {
                first = typo(&mut self.rng, &first);
                t.kinds |= kind::FIRST_TYPO;
            }
            if self.rng.chance(0.06) {
                last = typo(&mut self.rng, &last);
                t.kinds |= kind::LAST_TYPO;
            }
        }
        let work_email = || -> String {
            let c = &self.companies[company];
            format!("{}@{}", p.work_local, c.domain)
        };
        let work = work_email();
        // People mostly give the same number: the mobile if they have one, else the direct line.
        let mut phones: Vec<String> = [p.mobile.clone(), p.direct.clone()].into_iter().flatten().collect();
        if phones.len() > 1 && self.rng.chance(0.8) {
            phones.truncate(1);
        }
        let mut email;
        let mut phone;
        let mut switchboard = false;
        let with_company;
        let street;
        let postal;
        let city;
        match rng_channel {
            // Web form
            0..40 => {
                t.kinds |= kind::CHANNEL_WEB;
                email =
                    if p.personal.is_some() && self.rng.chance(0.25) { p.personal.clone() } else { Some(work.clone()) };
                phone = if self.rng.chance(0.5) && !phones.is_empty() {
                    Some(self.rng.pick(&phones).clone())
                } else {
                    None
                };
                with_company = true;
                city = self.rng.chance(0.7);
                street = self.rng.chance(0.2);
                postal = street || self.rng.chance(0.2);
            }
            // Event badge scan
            40..65 => {
                t.kinds |= kind::CHANNEL_BADGE;
                email = self.rng.chance(0.5).then(|| work.clone());
                phone = if self.rng.chance(0.3) && !phones.is_empty() {
                    Some(self.rng.pick(&phones).clone())
                } else {
                    None
                };
                with_company = true;
                city = self.rng.chance(0.6);
                street = false;
                postal = false;
            }
            // Partner list
            65..85 => {
                t.kinds |= kind::CHANNEL_PARTNER;
                email = self.rng.chance(0.3).then(|| work.clone());
                phone = if self.rng.chance(0.7) {
                    if self.rng.chance(0.3) || phones.is_empty() {
                        switchboard = true;
                        Some(self.companies[company].switchboard.clone())
                    } else {
                        Some(self.rng.pick(&phones).clone())
                    }
                } else {
                    None
                };
                with_company = true;
                city = true;
                street = self.rng.chance(0.8);
                postal = true;
            }
            // Phone-only chat
            _ => {
                t.kinds |= kind::CHANNEL_CHAT;
                email = if self.rng.chance(0.3) { p.personal.clone().or(Some(work.clone())) } else { None };
                phone = if phones.is_empty() { None } else { Some(self.rng.pick(&phones).clone()) };
                if phone.is_none() && email.is_none() {
                    email = Some(work.clone());
                }
                with_company = self.rng.chance(0.4);
                city = false;
                street = false;
                postal = false;
                if self.rng.chance(0.5) {
                    last.clear();
                }
            }
        }
        if mutate
            && let Some(alias) = &p.alias_local
            && email.as_deref() == Some(work.as_str())
            && self.rng.chance(0.5)
        {
            email = Some(format!("{alias}@{}", self.companies[company].domain));
            t.kinds |= kind::EMAIL_ALIAS;
        }
        t.mailbox = email.clone();
        if email.is_some() && email != Some(work.clone()) && t.kinds & kind::EMAIL_ALIAS == 0 {
            t.kinds |= kind::PERSONAL_EMAIL;
        }
        if mutate && let Some(e) = email.clone() {
            email = Some(self.gmail_variant(&e));
            if email.as_deref() != Some(e.as_str()) {
                t.kinds |= kind::GMAIL_VARIANT;
            }
        }
        t.full_name = !last.is_empty();
        if last.is_empty() {
            t.kinds |= kind::NO_LAST_NAME;
        }
        if email.is_none() {
            t.kinds |= kind::NO_EMAIL;
        }
        if phone.is_none() {
            t.kinds |= kind::NO_PHONE;
        }
        if switchboard {
            t.kinds |= kind::SWITCHBOARD;
        } else {
            t.person_phone = phone.clone();
        }
        if !with_company {
            t.kinds |= kind::NO_COMPANY;
        }
        let work_domain =
            email.as_deref().is_some_and(|e| e.ends_with(&format!("@{}", self.companies[company].domain)));
        if with_company || work_domain {
            t.org = Some(company);
        }
        if postal {
            t.postal = Some(site.postal.clone());
        }
        r.first_name = Some(first);
        r.last_name = (!last.is_empty()).then_some(last);
        if let Some(e) = email {
            let domain = e.rsplit_once('@').map(|(_, d)| d.to_owned());
            r.free_mail = domain.as_deref().is_some_and(|d| FREE_MAIL.contains(&d) || d == "googlemail.com");
            r.email_domain = domain;
            r.email = Some(e.to_lowercase());
        }
        if let Some(ph) = phone.take() {
            let shown = display_phone(&mut self.rng, &ph, country);
            if shown != ph {
                t.kinds |= kind::PHONE_REFORMAT;
            }
            r.phone = Some(to_e164(&shown, country.dial));
        }
        if with_company {
            let display = self.company_display(company);
            let mut key = company_key(&display);
            if key != display.to_lowercase() {
                t.kinds |= kind::COMPANY_SUFFIX;
            }
            if mutate && self.rng.chance(0.04) {
                t.kinds |= kind::COMPANY_DRIFT;
                let words = &self.companies[company].words;
                key = if words.len() > 1 && self.rng.chance(0.5) {
                    words[..words.len() - 1].join(" ")
                } else {
                    format!("{key} {}", self.rng.pick(KEY_DRIFT))
                };
            }
            if mutate && self.rng.chance(0.02) {
                t.kinds |= kind::COMPANY_TYPO;
                key = typo(&mut self.rng, &key).to_lowercase();
            }
            r.company_key = Some(key);
            if self.rng.chance(0.5) {
                r.website_domain = Some(self.companies[company].website.clone());
            }
        }
        if street {
            let (long, short) = STREET_TYPES[site.street_type];
            let ty = if self.rng.chance(0.5) { long } else { short };
            let mut s = format!("{} {} {ty}", site.street_no, site.street);
            if mutate && self.rng.chance(0.03) {
                s = typo(&mut self.rng, &s);
                t.kinds |= kind::STREET_TYPO;
            }
            r.street = Some(s);
        }
        if postal {
            r.postal_code = Some(site.postal.clone());
        }
        if city {
            r.city = Some(site.city.to_owned());
        }
        if street || postal || city || self.rng.chance(0.5) {
            r.country = Some(country.code.to_owned());
        }
        (r, t)
    }
}

/// Generates leads for `cfg.entities` people. Records of one entity share `entity`; the output
/// is shuffled deterministically so duplicates are not adjacent.
pub fn generate(cfg: Config) -> Vec<Lead> {
    let n_companies = (cfg.entities / 6).max(10);
    let mut world = World {
        rng: Rng::new(cfg.seed),
        companies: Vec::with_capacity(n_companies),
        company_keys: HashSet::new(),
        company_zipf: Zipf::new(n_companies, 0.8),
        first_zipf: Zipf::new(MALE.len().max(FEMALE.len()), 0.7),
        last_zipf: Zipf::new(SURNAMES.len(), 0.6),
        personal_used: HashSet::new(),
        people: Vec::with_capacity(cfg.entities),
    };
    for _ in 0..n_companies {
        let c = world.new_company();
        world.companies.push(c);
    }
    let mut leads = Vec::with_capacity(cfg.entities * 2);
    for entity in 0..cfg.entities {
        let kind = world.rng.below(100);
        let existing = world.people.len();
        let person = if kind < 6 && existing > 0 {
            // Namesake at another company.
            let other = world.people[world.rng.below(existing)].clone();
            let mut c = world.company_zipf.sample(&mut world.rng);
            if c == other.company {
                c = (c + 1) % world.companies.len();
            }
            world.make_person(other.first, other.last, c)
        } else if kind < 10 && existing > 0 {
            // Relative (or unrelated same-surname colleague) at the same company.
            let other = world.people[world.rng.below(existing)].clone();
            let mut first = world.random_first();
            while same_or_nick(&first, &other.first) {
                first = world.random_first();
            }
            let mut p = world.make_person(first, other.last, other.company);
            p.site = other.site;
            p
        } else if kind < 13 {
            let (f, l) = *world.rng.pick(COMMON_NAMES);
            let c = world.company_zipf.sample(&mut world.rng);
            world.make_person(f.to_owned(), l.to_owned(), c)
        } else {
            let f = world.random_first();
            let l = world.random_last();
            let c = world.company_zipf.sample(&mut world.rng);
            world.make_person(f, l, c)
        };
        world.people.push(person.clone());
        let n = match world.rng.below(100) {
            0..55 => 1,
            55..80 => 2,
            80..92 => 3,
            92..97 => 4,
            _ => 5,
        };
        for i in 0..n {
            let mutate = i > 0 || world.rng.chance(0.5);
            let (record, truth) = world.record_of(&person, mutate);
            leads.push(Lead { entity: entity as u32, record, truth });
        }
    }
    // Fisher-Yates shuffle.
    for i in (1..leads.len()).rev() {
        let j = world.rng.below(i + 1);
        leads.swap(i, j);
    }
    leads
}
