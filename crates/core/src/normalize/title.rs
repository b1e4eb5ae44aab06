//! Job title → seniority and department.

use serde::{Deserialize, Serialize};

use crate::normalize::text::fold;

/// Seniority level, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seniority {
    /// Individual contributor (engineer, analyst, specialist, associate,
    /// coordinator, intern, assistant, …).
    Individual,
    /// Manager, team lead, supervisor, gerente, responsable, Teamleiter.
    Manager,
    /// Director, Head of …, Leiter/Leiterin, directeur, General Manager,
    /// Chief of Staff, General Counsel.
    Director,
    /// VP, SVP, EVP, AVP, Vice President.
    Vp,
    /// Chief … Officer and C-level abbreviations, President, Founder, Owner,
    /// Chair, Partner (standalone / managing / senior / founding / general),
    /// Managing Director, Geschäftsführer, Inhaber, Vorstand, PDG,
    /// Director General, Gerente General.
    CLevel,
}

/// Business function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Department {
    /// Software / hardware engineering, R&D, QA.
    Engineering,
    /// IT, systems, networks, security.
    It,
    /// Data science, analytics, BI.
    Data,
    /// Marketing, growth, brand, communications, PR.
    Marketing,
    /// Sales, business development, accounts, partnerships, revenue.
    Sales,
    /// Finance, accounting, tax, treasury, audit.
    Finance,
    /// HR, people, talent, recruiting, payroll.
    Hr,
    /// Operations, logistics, supply chain, facilities, production.
    Operations,
    /// Product management.
    Product,
    /// Design, UX, creative.
    Design,
    /// Legal, compliance.
    Legal,
    /// Customer support, service and success.
    Support,
    /// Purchasing / procurement.
    Procurement,
    /// Assistants, receptionists, office management.
    Administrative,
    /// General management (CEO, President, Founder, Owner, …) when no other
    /// function is named.
    Executive,
    /// A recognised function outside this list (research, teaching,
    /// clinical).
    Other,
}

/// Result of [`classify_title`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TitleClass {
    /// `None` when no seniority word was recognised.
    pub seniority: Option<Seniority>,
    /// `None` when no function was recognised.
    pub department: Option<Department>,
}

/// Classify a free-text job title.
///
/// The title is lower-cased, accents are folded, punctuation separates
/// words, `&` reads as "and", and abbreviations are expanded (Sr, Jr, Mgr,
/// Dir, Asst, Assoc, Exec, Eng, Dev, Mktg, Acct, Rep, Ops, Tech, GM, MD, V.P.,
/// …).
///
/// **Seniority** is the highest level any word points to (CLevel > Vp >
/// Director > Manager > Individual), so "Senior Director" is Director and
/// "Associate Vice President" Vp. Exception, the *assistant rule*: when an
/// assistant word (assistant, secretary, Assistent(in), asistente, PA/EA
/// followed by "to", …) is not directly followed by a rank word (manager,
/// director, VP, head, general, professor, …), the title is Individual.
/// Hence "Assistant to the CEO", "Executive Assistant, Office of the CEO" and
/// "CEO Assistant" are Individual, while "Assistant Manager" is Manager and
/// "Assistant Director" Director. Everything after a standalone "to" names
/// the person served and is ignored ("Chief of Staff to the President" →
/// Director, no department).
///
/// "Chief" is CLevel when an "officer" follows or a function word follows
/// (Chief Marketing …); "Chief of Staff" and other chiefs (Chief Engineer,
/// Chief Architect) are Director. "Product Owner" is Individual; other
/// "Owner"s are CLevel. "Lead" is Manager only as the last word or before
/// "of" ("Engineering Lead", "Team Lead"); "Lead Engineer" is Individual.
/// "Account Manager"/"Product Manager" are Manager (the title word decides).
///
/// **Department** is the first strong function word in the title ("Director -
/// Sales & Ops" → Sales); Executive (CEO, President, Founder, …) and
/// Administrative (assistant, office manager) are weak and used only when no
/// strong function word occurs ("Co-Founder & CTO" → Engineering). CEO/CxO
/// abbreviations: CTO Engineering, CIO/CISO It, CFO Finance, COO Operations,
/// CMO Marketing, CRO Sales, CHRO Hr, CLO Legal, CEO/CxO Executive; the
/// ambiguous CPO, CDO, CSO, CCO and CAO give no department.
///
/// Non-English words recognised where unambiguous: Geschäftsführer(in),
/// Inhaber(in), Vorstand, Leiter(in) (+ compounds such as Vertriebsleiter;
/// Team-/Gruppen-/Projektleiter are Manager), Entwickler, Ingenieur,
/// Berater, Referent, Sachbearbeiter, Mitarbeiter, Praktikant, Werkstudent;
/// directeur/directrice, PDG, responsable, chef de projet; director(a),
/// gerente, jefe/jefa, Director General, Gerente General, ejecutivo,
/// vendedor, analista; diretor(a), direttore; and common function words
/// (Vertrieb, Verkauf, Einkauf, Personal, ventas, compras, RRHH, achats, …).
///
/// Unknown titles give `None` in both fields. Never panics.
pub fn classify_title(raw: &str) -> TitleClass {
    let tokens = tokenize(raw);
    let mut toks: Vec<&str> = tokens.iter().map(String::as_str).collect();
    // Drop whatever follows a standalone "to" (the person served), and the
    // German/Romance "der/de/del … " after an assistant word.
    if let Some(i) = toks.iter().position(|t| *t == "to") {
        toks.truncate(i);
    }
    if let Some(i) = toks.windows(2).position(|w| {
        is_assistant_word(w[0]) && matches!(w[1], "der" | "des" | "de" | "del" | "di" | "du" | "da" | "do")
    }) {
        toks.truncate(i + 1);
    }
    TitleClass { seniority: seniority(&toks), department: department(&toks) }
}

fn tokenize(raw: &str) -> Vec<String> {
    let folded = fold(raw);
    let mut spaced = String::with_capacity(folded.len() + 8);
    for c in folded.chars() {
        if c == '&' || c == '+' {
            spaced.push_str(" and ");
        } else if c.is_alphanumeric() {
            spaced.push(c);
        } else if c == '.' || c == '\'' {
            // "v.p." → "vp", "s.v.p." → "svp"; "o'" rarely matters here
        } else {
            spaced.push(' ');
        }
    }
    let mut out: Vec<String> = Vec::new();
    let raw_tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut i = 0;
    while i < raw_tokens.len() {
        let t = raw_tokens[i];
        let next = raw_tokens.get(i + 1).copied();
        // Two-token joins.
        let joined = match (t, next) {
            ("co", Some("founder")) => Some("cofounder"),
            ("co", Some("owner")) => Some("owner"),
            ("vice", Some("president" | "presidente" | "presidenta")) => Some("vp"),
            ("v", Some("p")) => Some("vp"),
            ("full", Some("stack")) => Some("fullstack"),
            ("front", Some("end")) => Some("frontend"),
            ("back", Some("end")) => Some("backend"),
            ("help", Some("desk")) => Some("helpdesk"),
            ("pre", Some("sales")) => Some("presales"),
            ("c", Some("level" | "suite")) => Some("clevel"),
            ("team", Some("lead" | "leader")) => Some("teamlead"),
            ("human", Some("resources" | "resource")) => Some("hr"),
            ("recursos", Some("humanos")) => Some("hr"),
            ("ressources", Some("humaines")) => Some("hr"),
            ("r", Some("and")) if raw_tokens.get(i + 2) == Some(&"d") => {
                out.push("rnd".to_owned());
                i += 3;
                continue;
            }
            ("l", Some("and")) if raw_tokens.get(i + 2) == Some(&"d") => {
                out.push("hr".to_owned());
                i += 3;
                continue;
            }
            _ => None,
        };
        if let Some(j) = joined {
            out.push(j.to_owned());
            i += 2;
            continue;
        }
        let expanded: &[&str] = match t {
            "sr" | "snr" => &["senior"],
            "jr" | "jnr" => &["junior"],
            "mgr" | "mngr" | "mgr." => &["manager"],
            "dir" | "dirs" => &["director"],
            "asst" | "assist" | "ass" => &["assistant"],
            "assoc" => &["associate"],
            "exec" => &["executive"],
            "eng" | "engr" => &["engineer"],
            "dev" => &["developer"],
            "mktg" | "mkt" => &["marketing"],
            "acct" => &["account"],
            "rep" | "repr" => &["representative"],
            "ops" => &["operations"],
            "tech" => &["technology"],
            "gm" => &["general", "manager"],
            "md" => &["managing", "director"],
            "pres" => &["president"],
            "svp" | "evp" | "avp" | "vp" | "vicepresident" | "vicepresidente" | "vizeprasident" | "vizeprasidentin" => {
                &["vp"]
            }
            "coord" => &["coordinator"],
            "spec" => &["specialist"],
            "admin" => &["administrator"],
            "bizdev" => &["business", "development"],
            "biz" => &["business"],
            "cust" => &["customer"],
            "svc" | "svcs" => &["services"],
            "hrbp" => &["hr"],
            "bd" => &["business", "development"],
            "mgmt" => &["management"],
            "teamleader" | "teamleiter" | "teamleiterin" => &["teamlead"],
            _ => {
                out.push(t.to_owned());
                i += 1;
                continue;
            }
        };
        out.extend(expanded.iter().map(|s| (*s).to_owned()));
        i += 1;
    }
    out
}

const C_ABBR_DEPT: &[(&str, Option<Department>)] = &[
    ("ceo", Some(Department::Executive)),
    ("cxo", Some(Department::Executive)),
    ("cto", Some(Department::Engineering)),
    ("cio", Some(Department::It)),
    ("ciso", Some(Department::It)),
    ("cfo", Some(Department::Finance)),
    ("coo", Some(Department::Operations)),
    ("cmo", Some(Department::Marketing)),
    ("cro", Some(Department::Sales)),
    ("chro", Some(Department::Hr)),
    ("cpo", None),
    ("cdo", None),
    ("cso", None),
    ("cco", None),
    ("cao", None),
    ("clo", Some(Department::Legal)),
];

const CHIEF_FUNCTION_WORDS: &[&str] = &[
    "executive",
    "technology",
    "technical",
    "financial",
    "finance",
    "operating",
    "operations",
    "marketing",
    "information",
    "revenue",
    "product",
    "people",
    "legal",
    "data",
    "digital",
    "security",
    "commercial",
    "customer",
    "growth",
    "strategy",
    "hr",
    "human",
    "business",
    "sales",
    "medical",
    "compliance",
    "risk",
    "procurement",
    "innovation",
    "experience",
    "administrative",
    "accounting",
    "investment",
    "communications",
    "content",
    "creative",
    "talent",
    "privacy",
    "diversity",
    "transformation",
    "analytics",
];

fn is_assistant_word(t: &str) -> bool {
    matches!(
        t,
        "assistant"
            | "assistants"
            | "assistent"
            | "assistentin"
            | "assistente"
            | "asistente"
            | "assistante"
            | "secretary"
            | "secretaire"
            | "secretaria"
            | "sekretar"
            | "sekretarin"
            | "aide"
            | "receptionist"
    )
}

fn is_rank_after_assistant(t: &str) -> bool {
    matches!(
        t,
        "vp" | "director"
            | "directeur"
            | "directora"
            | "manager"
            | "head"
            | "general"
            | "professor"
            | "principal"
            | "controller"
            | "treasurer"
            | "editor"
            | "chief"
            | "superintendent"
            | "dean"
            | "gerente"
            | "store"
    )
}

fn seniority(t: &[&str]) -> Option<Seniority> {
    use Seniority::*;
    let mut best: Option<Seniority> = None;
    let mut bump = |s: Seniority| {
        if best.is_none_or(|b| s > b) {
            best = Some(s);
        }
    };
    let mut assistant_cap = false;
    let n = t.len();
    for i in 0..n {
        let w = t[i];
        let prev = if i > 0 { t.get(i - 1).copied() } else { None };
        let next = t.get(i + 1).copied();
        if is_assistant_word(w) && !next.is_some_and(is_rank_after_assistant) {
            assistant_cap = true;
        }
        if matches!(w, "pa" | "ea") && (n == 1) {
            assistant_cap = true;
        }
        if C_ABBR_DEPT.iter().any(|(a, _)| *a == w) {
            bump(CLevel);
            continue;
        }
        if let Some(s) = german_compound_seniority(w) {
            bump(s);
            continue;
        }
        match w {
            "chief" => {
                if next == Some("of") {
                    bump(Director);
                } else if t[i + 1..].contains(&"officer") || next.is_some_and(|x| CHIEF_FUNCTION_WORDS.contains(&x)) {
                    bump(CLevel);
                } else {
                    bump(Director);
                }
            }
            "president" | "presidente" | "presidenta" | "presidentin" | "prasident" | "prasidentin" => bump(CLevel),
            "vice" => {
                if matches!(next, Some("chair" | "chairman" | "chairwoman" | "chairperson")) {
                    bump(CLevel);
                }
            }
            "vp" => bump(Vp),
            "founder" | "cofounder" | "fundador" | "fundadora" | "fondateur" | "fondatrice" | "grunder"
            | "grunderin" | "mitgrunder" | "mitgrunderin" | "clevel" => bump(CLevel),
            "owner" => {
                if matches!(prev, Some("product" | "process" | "data" | "service" | "system" | "content" | "platform"))
                {
                    bump(Individual);
                } else {
                    bump(CLevel);
                }
            }
            "inhaber"
            | "inhaberin"
            | "propietario"
            | "propietaria"
            | "dueno"
            | "duena"
            | "proprietaire"
            | "proprietor"
            | "geschaftsfuhrer"
            | "geschaftsfuhrerin"
            | "geschaftsfuhrender"
            | "geschaftsfuhrende"
            | "vorstand"
            | "vorstandin"
            | "vorstandsvorsitzender"
            | "vorstandsvorsitzende"
            | "vorstandsmitglied"
            | "pdg"
            | "chairman"
            | "chairwoman"
            | "chairperson" => bump(CLevel),
            "chair" => bump(CLevel),
            "board" if matches!(next, Some("member" | "director")) || prev == Some("the") => bump(CLevel),
            "managing" => {
                if matches!(next, Some("director" | "partner" | "directora")) {
                    bump(CLevel);
                }
            }
            "partner" => {
                if prev == Some("business") {
                    // "HR Business Partner"
                    bump(Individual);
                    continue;
                }
                let standalone = prev.is_none()
                    || matches!(prev, Some("managing" | "senior" | "founding" | "general" | "equity" | "and" | "name"));
                let trailing = next.is_none() || matches!(next, Some("and" | "at" | "of"));
                if standalone && trailing {
                    bump(CLevel);
                }
            }
            "general" => {
                if matches!(next, Some("manager" | "managerin" | "counsel")) {
                    bump(Director);
                } else if matches!(next, Some("director" | "partner")) {
                    bump(CLevel);
                }
            }
            "director" | "directora" | "directeur" | "directrice" | "direttore" | "direttrice" | "diretor"
            | "diretora" | "direktor" | "direktorin" => {
                let general =
                    matches!(next, Some("general" | "generale" | "generala" | "geral" | "ejecutivo" | "ejecutiva"));
                if general {
                    bump(CLevel);
                } else {
                    bump(Director);
                }
            }
            "gerente" | "gerenta" => {
                if matches!(next, Some("general" | "geral")) {
                    bump(CLevel);
                } else {
                    bump(Manager);
                }
            }
            "head" | "leiter" | "leiterin" | "dean" => bump(Director),
            "manager" | "managerin" | "responsable" | "jefe" | "jefa" | "supervisor" | "supervisora"
            | "supervisorin" | "teamlead" | "foreman" | "superintendent" | "gestor" | "gestora" => bump(Manager),
            "chef" => {
                if matches!(next, Some("de" | "d")) {
                    bump(Manager);
                }
            }
            "lead" | "leader" if matches!(next, None | Some("of" | "and")) => bump(Manager),
            "engineer" | "engineers" | "developer" | "developers" | "programmer" | "analyst" | "specialist"
            | "coordinator" | "associate" | "intern" | "internship" | "trainee" | "apprentice" | "representative"
            | "consultant" | "assistant" | "administrator" | "architect" | "designer" | "scientist" | "researcher"
            | "accountant" | "bookkeeper" | "agent" | "clerk" | "technician" | "officer" | "recruiter"
            | "generalist" | "writer" | "copywriter" | "editor" | "tester" | "sdr" | "bdr" | "ae" | "paralegal"
            | "attorney" | "lawyer" | "counsel" | "buyer" | "planner" | "auditor" | "advisor" | "adviser"
            | "strategist" | "receptionist" | "secretary" | "teacher" | "nurse" | "student" | "professor"
            | "lecturer" | "fellow" | "marketer" | "salesperson" | "ingenieur" | "ingenieurin" | "ingeniero"
            | "ingeniera" | "engenheiro" | "engenheira" | "entwickler" | "entwicklerin" | "desarrollador"
            | "desarrolladora" | "developpeur" | "developpeuse" | "analista" | "berater" | "beraterin"
            | "consultor" | "consultora" | "sachbearbeiter" | "sachbearbeiterin" | "referent" | "referentin"
            | "praktikant" | "praktikantin" | "werkstudent" | "werkstudentin" | "asistente" | "assistente"
            | "assistante" | "assistent" | "assistentin" | "ejecutivo" | "ejecutiva" | "vendedor" | "vendedora"
            | "tecnico" | "tecnica" | "especialista" | "coordinador" | "coordinadora" | "coordinateur"
            | "coordinatrice" | "stagiaire" | "becario" | "becaria" | "azubi" | "auszubildender" | "auszubildende"
            | "comptable" | "contador" | "contadora" | "mitarbeiter" | "mitarbeiterin" | "charge" | "chargee"
            | "ingenieure" | "commercial" | "analyste" => {
                // "commercial" is a noun (sales rep) only as the first word in French.
                if w == "commercial" && i != 0 {
                    continue;
                }
                bump(Individual)
            }
            "executive"
                if matches!(prev, Some("account" | "sales" | "marketing" | "business" | "accounts"))
                    || next.is_none() && prev.is_none() =>
            {
                bump(Individual)
            }
            _ => {}
        }
    }
    if assistant_cap {
        return Some(Individual);
    }
    best
}

/// German compound nouns: Vertriebsleiter, Softwareentwickler, Personalreferent …
fn german_compound_seniority(w: &str) -> Option<Seniority> {
    let (_, head) = split_compound(w)?;
    Some(match head {
        "leiter" | "leiterin" => {
            let prefix = w.strip_suffix(head).unwrap_or("");
            if matches!(
                prefix.trim_end_matches('s'),
                "team" | "gruppe" | "gruppen" | "projekt" | "schicht" | "filial" | "bau" | "kurs"
            ) {
                Seniority::Manager
            } else {
                Seniority::Director
            }
        }
        "manager" | "managerin" => Seniority::Manager,
        "fuhrer" | "fuhrerin" => return None,
        _ => Seniority::Individual,
    })
}

/// Split a German compound into (function prefix, head noun) when the head is
/// a known job noun and the word is longer than the head.
fn split_compound(w: &str) -> Option<(&str, &'static str)> {
    const HEADS: &[&str] = &[
        "leiterin",
        "leiter",
        "entwicklerin",
        "entwickler",
        "ingenieurin",
        "ingenieur",
        "beraterin",
        "berater",
        "referentin",
        "referent",
        "mitarbeiterin",
        "mitarbeiter",
        "sachbearbeiterin",
        "sachbearbeiter",
        "managerin",
        "manager",
        "kauffrau",
        "kaufmann",
        "assistentin",
        "assistent",
        "spezialistin",
        "spezialist",
    ];
    if !w.is_ascii() {
        return None;
    }
    for head in HEADS {
        if w.len() > head.len() + 1
            && let Some(prefix) = w.strip_suffix(head)
        {
            return Some((prefix, head));
        }
    }
    None
}

fn compound_department(w: &str) -> Option<Department> {
    use Department::*;
    let (prefix, _) = split_compound(w)?;
    let p = prefix.trim_end_matches('-');
    let p = if p.len() > 3 { p.trim_end_matches('s') } else { p };
    Some(match p {
        "vertrieb" | "verkauf" | "sale" | "key-account" | "keyaccount" | "account" | "export" => Sales,
        "marketing" | "produktmarketing" | "online-marketing" | "onlinemarketing" => Marketing,
        "personal" | "hr" | "recruiting" => Hr,
        "einkauf" | "beschaffung" => Procurement,
        "it" | "edv" | "system" | "netzwerk" => It,
        "finanz" | "finanzen" | "buchhaltung" | "controlling" | "steuer" => Finance,
        "entwicklung" | "software" | "technik" | "hardware" | "web" | "frontend" | "backend" | "java" | "elektro"
        | "maschinenbau" => Engineering,
        "produktion" | "logistik" | "betrieb" | "qualitat" | "lager" | "werk" => Operations,
        "kundenservice" | "kundendienst" | "support" | "service" => Support,
        "recht" | "recht-" | "justiziar" => Legal,
        "produkt" | "product" => Product,
        "daten" | "data" => Data,
        _ => return None,
    })
}

/// (phrase, department, strong)
const PHRASES: &[(&[&str], Department, bool)] = {
    use Department::*;
    &[
        (&["business", "development"], Sales, true),
        (&["business", "developer"], Sales, true),
        (&["product", "marketing"], Marketing, true),
        (&["product", "designer"], Design, true),
        (&["demand", "planner"], Operations, true),
        (&["demand", "planning"], Operations, true),
        (&["product", "design"], Design, true),
        (&["customer", "success"], Support, true),
        (&["client", "success"], Support, true),
        (&["client", "services"], Support, true),
        (&["client", "service"], Support, true),
        (&["accounts", "payable"], Finance, true),
        (&["accounts", "receivable"], Finance, true),
        (&["talent", "acquisition"], Hr, true),
        (&["information", "technology"], It, true),
        (&["information", "security"], It, true),
        (&["information", "systems"], It, true),
        (&["information", "officer"], It, true),
        (&["chief", "executive"], Executive, false),
        (&["supply", "chain"], Operations, true),
        (&["quality", "assurance"], Engineering, true),
        (&["quality", "engineer"], Engineering, true),
        (&["data", "center"], It, true),
        (&["service", "desk"], It, true),
        (&["desktop", "support"], It, true),
        (&["technical", "support"], Support, true),
        (&["technology", "support"], Support, true),
        (&["site", "reliability"], Engineering, true),
        (&["machine", "learning"], Engineering, true),
        (&["public", "relations"], Marketing, true),
        (&["demand", "generation"], Marketing, true),
        (&["general", "counsel"], Legal, true),
        (&["revenue", "operations"], Sales, true),
        (&["user", "experience"], Design, true),
        (&["user", "research"], Design, true),
        (&["research", "and", "development"], Engineering, true),
        (&["vendor", "management"], Procurement, true),
        (&["partner", "manager"], Sales, true),
        (&["office", "manager"], Administrative, false),
        (&["office", "administrator"], Administrative, false),
        (&["personal", "assistant"], Administrative, false),
        (&["managing", "director"], Executive, false),
        (&["managing", "partner"], Executive, false),
        (&["gerente", "general"], Executive, false),
        (&["director", "general"], Executive, false),
        (&["directeur", "general"], Executive, false),
        (&["directrice", "generale"], Executive, false),
        (&["directora", "general"], Executive, false),
        (&["general", "director"], Executive, false),
        (&["atencion", "al", "cliente"], Support, true),
        (&["servicio", "al", "cliente"], Support, true),
        (&["service", "client"], Support, true),
        (&["service", "clients"], Support, true),
        (&["systems", "engineer"], It, true),
        (&["solutions", "engineer"], Sales, true),
        (&["sales", "engineer"], Sales, true),
        (&["field", "service"], Support, true),
        (&["investor", "relations"], Finance, true),
    ]
};

fn word_department(w: &str, prev: Option<&str>, next: Option<&str>) -> Option<(Department, bool)> {
    use Department::*;
    if let Some(d) = C_ABBR_DEPT.iter().find(|(a, _)| *a == w).and_then(|(_, d)| *d) {
        return Some((d, d != Executive));
    }
    let strong = |d| Some((d, true));
    let weak = |d| Some((d, false));
    match w {
        "engineer" | "engineers" | "engineering" | "developer" | "developers" | "development" | "programmer"
        | "software" | "devops" | "sre" | "frontend" | "backend" | "fullstack" | "qa" | "tester" | "architect"
        | "technology" | "rnd" | "ingenieur" | "ingenieurin" | "ingeniero" | "ingeniera" | "engenheiro"
        | "engenheira" | "entwickler" | "entwicklerin" | "entwicklung" | "desarrollador" | "desarrolladora"
        | "developpeur" | "developpeuse" | "desarrollo" | "firmware" | "embedded" | "hardware" | "mechanical"
        | "electrical" | "ml" | "ios" | "android" | "web" => strong(Engineering),
        "it" | "sysadmin" | "system" | "systems" | "network" | "networks" | "networking" | "infrastructure"
        | "security" | "cybersecurity" | "infosec" | "helpdesk" | "edv" | "informatik" | "informatica"
        | "informatique" | "sistemas" | "ict" | "dba" | "database" | "erp" => strong(It),
        "data" | "analytics" | "bi" => strong(Data),
        "marketing" | "marketer" | "brand" | "branding" | "growth" | "seo" | "sem" | "ppc" | "content"
        | "communications" | "communication" | "comms" | "pr" | "advertising" | "campaign" | "campaigns" | "events"
        | "event" | "demand" | "social" | "copywriter" | "community" | "mercadeo" | "mercadotecnia" | "market"
        | "marketingleiter" => strong(Marketing),
        "sales" | "account" | "accounts" | "sdr" | "bdr" | "ae" | "revenue" | "commercial" | "comercial"
        | "channel" | "partnerships" | "vertrieb" | "verkauf" | "ventas" | "vendas" | "vendedor" | "vendedora"
        | "presales" | "territory" | "salesperson" | "ventes" | "alliances" => strong(Sales),
        "finance" | "financial" | "finanzen" | "finanz" | "finanzas" | "financier" | "financiero" | "financiera"
        | "financeiro" | "accounting" | "accountant" | "controller" | "controlling" | "treasury" | "treasurer"
        | "tax" | "audit" | "auditor" | "bookkeeper" | "billing" | "fp" | "investor" | "buchhaltung" | "buchhalter"
        | "buchhalterin" | "contador" | "contadora" | "comptable" | "contabilidad" | "comptabilite" | "credit"
        | "loan" | "actuary" | "fpa" | "finances" => strong(Finance),
        "hr" | "people" | "talent" | "recruiter" | "recruiting" | "recruitment" | "personnel" | "personal" | "rrhh"
        | "chro" | "compensation" | "benefits" | "payroll" | "learning" | "employee" | "culture" | "workforce"
        | "personalwesen" => strong(Hr),
        "operations" | "operation" | "operational" | "operating" | "logistics" | "logistik" | "facilities"
        | "facility" | "warehouse" | "fulfillment" | "production" | "produktion" | "plant" | "manufacturing"
        | "quality" | "supply" | "betrieb" | "operaciones" | "operacoes" | "fleet" | "dispatch" | "inventory"
        | "shipping" | "logistica" | "logistique" | "operationnel" => strong(Operations),
        "product" | "products" | "produkt" | "producto" | "produit" => strong(Product),
        "design" | "designer" | "ux" | "ui" | "creative" | "art" | "graphic" | "illustrator" | "visual" | "diseno"
        | "disenador" | "disenadora" => strong(Design),
        "legal" | "counsel" | "attorney" | "lawyer" | "paralegal" | "compliance" | "juridique" | "juridico"
        | "juridica" | "abogado" | "abogada" | "avocat" | "rechtsanwalt" | "rechtsanwaltin" | "syndikus"
        | "contracts" | "privacy" | "regulatory" | "litigation" | "justiziar" => strong(Legal),
        "support" | "customer" | "customers" | "kundenservice" | "kundendienst" | "soporte" | "cx" | "csm" => {
            strong(Support)
        }
        "procurement" | "purchasing" | "purchaser" | "buyer" | "sourcing" | "einkauf" | "einkaufer" | "einkauferin"
        | "compras" | "comprador" | "compradora" | "achats" | "acheteur" | "acheteuse" => strong(Procurement),
        "research" | "researcher" | "scientist" | "teacher" | "professor" | "lecturer" | "nurse" | "physician"
        | "doctor" | "pharmacist" | "clinical" | "medical" => strong(Other),
        "ceo"
        | "president"
        | "presidente"
        | "presidenta"
        | "founder"
        | "cofounder"
        | "owner"
        | "chairman"
        | "chairwoman"
        | "chairperson"
        | "chair"
        | "board"
        | "geschaftsfuhrer"
        | "geschaftsfuhrerin"
        | "geschaftsfuhrender"
        | "geschaftsfuhrende"
        | "inhaber"
        | "inhaberin"
        | "vorstand"
        | "vorstandsvorsitzender"
        | "vorstandsvorsitzende"
        | "vorstandsmitglied"
        | "pdg"
        | "fundador"
        | "fundadora"
        | "fondateur"
        | "fondatrice"
        | "grunder"
        | "grunderin"
        | "propietario"
        | "propietaria"
        | "dueno"
        | "duena"
        | "proprietor"
        | "clevel"
        | "partner"
        | "prasident"
        | "prasidentin" => {
            if w == "owner" && matches!(prev, Some("product" | "process" | "data")) {
                return None;
            }
            weak(Executive)
        }
        "assistant" | "assistants" | "assistent" | "assistentin" | "asistente" | "assistente" | "assistante"
        | "secretary" | "secretaire" | "secretaria" | "receptionist" | "administrative" | "office" | "sekretar"
        | "sekretarin" => {
            if is_assistant_word(w) && next.is_some_and(is_rank_after_assistant) {
                return None;
            }
            weak(Administrative)
        }
        _ => compound_department(w).map(|d| (d, true)),
    }
}

fn department(t: &[&str]) -> Option<Department> {
    let mut weak_hit: Option<Department> = None;
    let mut i = 0;
    while i < t.len() {
        let mut matched = None;
        for (phrase, dept, strong) in PHRASES {
            if t[i..].starts_with(phrase) {
                matched = Some((phrase.len(), *dept, *strong));
                break;
            }
        }
        let (len, hit) = match matched {
            Some((len, d, s)) => (len, Some((d, s))),
            None => {
                let prev = if i > 0 { t.get(i - 1).copied() } else { None };
                (1, word_department(t[i], prev, t.get(i + 1).copied()))
            }
        };
        match hit {
            Some((d, true)) => return Some(d),
            Some((d, false)) if weak_hit.is_none() => weak_hit = Some(d),
            _ => {}
        }
        i += len;
    }
    weak_hit
}

#[cfg(test)]
mod tests {
    use super::*;
    use Department as D;
    use Seniority as S;

    fn c(s: &str) -> (Option<S>, Option<D>) {
        let t = classify_title(s);
        (t.seniority, t.department)
    }

    #[test]
    fn abbreviations() {
        assert_eq!(c("CEO"), (Some(S::CLevel), Some(D::Executive)));
        assert_eq!(c("CTO"), (Some(S::CLevel), Some(D::Engineering)));
        assert_eq!(c("CMO"), (Some(S::CLevel), Some(D::Marketing)));
        assert_eq!(c("CFO"), (Some(S::CLevel), Some(D::Finance)));
        assert_eq!(c("COO"), (Some(S::CLevel), Some(D::Operations)));
        assert_eq!(c("CIO"), (Some(S::CLevel), Some(D::It)));
        assert_eq!(c("CISO"), (Some(S::CLevel), Some(D::It)));
        assert_eq!(c("CPO"), (Some(S::CLevel), None));
        assert_eq!(c("VP"), (Some(S::Vp), None));
        assert_eq!(c("SVP Sales"), (Some(S::Vp), Some(D::Sales)));
        assert_eq!(c("EVP, Finance"), (Some(S::Vp), Some(D::Finance)));
        assert_eq!(c("AVP Operations"), (Some(S::Vp), Some(D::Operations)));
        assert_eq!(c("V.P. Engineering"), (Some(S::Vp), Some(D::Engineering)));
        assert_eq!(c("Dir. of Marketing"), (Some(S::Director), Some(D::Marketing)));
        assert_eq!(c("Sr. Mgr, IT"), (Some(S::Manager), Some(D::It)));
        assert_eq!(c("Sr. Software Eng."), (Some(S::Individual), Some(D::Engineering)));
    }

    #[test]
    fn separators_and_heads() {
        assert_eq!(c("VP, Marketing"), (Some(S::Vp), Some(D::Marketing)));
        assert_eq!(c("Director - Sales & Ops"), (Some(S::Director), Some(D::Sales)));
        assert_eq!(c("Head of Growth"), (Some(S::Director), Some(D::Marketing)));
        assert_eq!(c("Vice-President of Engineering"), (Some(S::Vp), Some(D::Engineering)));
        assert_eq!(c("Chief Marketing Officer"), (Some(S::CLevel), Some(D::Marketing)));
        assert_eq!(c("Chief Executive Officer"), (Some(S::CLevel), Some(D::Executive)));
        assert_eq!(c("President"), (Some(S::CLevel), Some(D::Executive)));
        assert_eq!(c("Founder"), (Some(S::CLevel), Some(D::Executive)));
        assert_eq!(c("Co-Founder & CTO"), (Some(S::CLevel), Some(D::Engineering)));
        assert_eq!(c("Owner"), (Some(S::CLevel), Some(D::Executive)));
        assert_eq!(c("Product Owner"), (Some(S::Individual), Some(D::Product)));
    }

    #[test]
    fn assistant_rule() {
        assert_eq!(c("Assistant to the CEO"), (Some(S::Individual), Some(D::Administrative)));
        assert_eq!(c("Executive Assistant to the CEO"), (Some(S::Individual), Some(D::Administrative)));
        assert_eq!(c("CEO Assistant").0, Some(S::Individual));
        assert_eq!(c("Executive Assistant, Office of the CEO").0, Some(S::Individual));
        assert_eq!(c("Assistant Manager"), (Some(S::Manager), None));
        assert_eq!(c("Assistant Director of Finance"), (Some(S::Director), Some(D::Finance)));
        assert_eq!(c("Assistant Vice President"), (Some(S::Vp), None));
        assert_eq!(c("Marketing Assistant"), (Some(S::Individual), Some(D::Marketing)));
        assert_eq!(c("Assistentin der Geschäftsführung"), (Some(S::Individual), Some(D::Administrative)));
        assert_eq!(c("Chief of Staff to the CEO"), (Some(S::Director), None));
    }

    #[test]
    fn individual_roles() {
        assert_eq!(c("Intern"), (Some(S::Individual), None));
        assert_eq!(c("Software Engineer"), (Some(S::Individual), Some(D::Engineering)));
        assert_eq!(c("Developer"), (Some(S::Individual), Some(D::Engineering)));
        assert_eq!(c("Financial Analyst"), (Some(S::Individual), Some(D::Finance)));
        assert_eq!(c("Marketing Specialist"), (Some(S::Individual), Some(D::Marketing)));
        assert_eq!(c("HR Coordinator"), (Some(S::Individual), Some(D::Hr)));
        assert_eq!(c("Sales Associate"), (Some(S::Individual), Some(D::Sales)));
        assert_eq!(c("Account Executive"), (Some(S::Individual), Some(D::Sales)));
        assert_eq!(c("Lead Engineer"), (Some(S::Individual), Some(D::Engineering)));
        assert_eq!(c("Engineering Lead"), (Some(S::Manager), Some(D::Engineering)));
    }

    #[test]
    fn non_english() {
        assert_eq!(c("Geschäftsführer"), (Some(S::CLevel), Some(D::Executive)));
        assert_eq!(c("GESCHÄFTSFÜHRERIN"), (Some(S::CLevel), Some(D::Executive)));
        assert_eq!(c("Directeur Commercial"), (Some(S::Director), Some(D::Sales)));
        assert_eq!(c("Gerente de Ventas"), (Some(S::Manager), Some(D::Sales)));
        assert_eq!(c("Gerente General"), (Some(S::CLevel), Some(D::Executive)));
        assert_eq!(c("Responsable Marketing"), (Some(S::Manager), Some(D::Marketing)));
        assert_eq!(c("Leiter Vertrieb"), (Some(S::Director), Some(D::Sales)));
        assert_eq!(c("Leiterin Personal"), (Some(S::Director), Some(D::Hr)));
        assert_eq!(c("Vertriebsleiter"), (Some(S::Director), Some(D::Sales)));
        assert_eq!(c("Teamleiterin Einkauf"), (Some(S::Manager), Some(D::Procurement)));
        assert_eq!(c("Softwareentwickler"), (Some(S::Individual), Some(D::Engineering)));
    }

    #[test]
    fn unknown() {
        assert_eq!(c(""), (None, None));
        assert_eq!(c("Ninja"), (None, None));
        assert_eq!(c("!!!"), (None, None));
        assert_eq!(classify_title("Rockstar"), TitleClass::default());
    }

    #[test]
    fn serde_snake_case() {
        let t = classify_title("VP, Marketing");
        let json = serde_json::to_string(&t).unwrap_or_default();
        assert_eq!(json, r#"{"seniority":"vp","department":"marketing"}"#);
        let c = serde_json::to_string(&S::CLevel).unwrap_or_default();
        assert_eq!(c, r#""c_level""#);
    }
}
