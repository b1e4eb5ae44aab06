//! Data residency: one store per region behind the one interface.
//!
//! A new lead goes to the region [`Regions::assign`] names for its country or source; a
//! person already stored somewhere (the same email) stays there, so a later submission
//! never makes a second lead in another region and a change of country updates the lead
//! where it lives. Everything about a lead (its submissions, history, events, outbox,
//! consent, feedback, the audit entries naming it) is written by that region's store, in
//! that region's database: each store settles and matches only its own leads, so no merge
//! ever crosses regions.
//!
//! What belongs to no lead lives in the default region (the home): API keys, import jobs,
//! cursors, alerts, the suppression list, retention runs. Reads that name a lead find its
//! region; listings and reports read every region and combine the answers.

use super::*;
use leadflow_core::region::Regions;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// How many ids each locator remembers before it starts over (lookups refill it).
const REMEMBERED: usize = 100_000;

/// One region's store and name.
pub struct Region {
    pub name: String,
    pub store: DynStore,
}

/// The stores of every region, routing each call to the region it concerns.
pub struct Regional {
    regions: Arc<[Region]>,
    rules: Arc<Regions>,
    home: usize,
    /// Where each lead lives, learnt as leads are stored and looked up: a lead never moves.
    leads: Arc<Locator<LeadId>>,
    /// Where each submission waiting in an inbox (pending, quarantined) is kept, so its
    /// copy goes once it settles in another region.
    waiting: Arc<Locator<SubmissionId>>,
    /// Where each claimed delivery lives, for recording its try.
    deliveries: Arc<Locator<String>>,
}

struct Locator<K>(Mutex<HashMap<K, usize>>);

impl<K: std::hash::Hash + Eq> Locator<K> {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(HashMap::new())))
    }

    fn get(&self, key: &K) -> Option<usize> {
        self.0.lock().ok().and_then(|m| m.get(key).copied())
    }

    fn put(&self, key: K, region: usize) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= REMEMBERED {
                m.clear();
            }
            m.insert(key, region);
        }
    }

    fn take(&self, key: &K) -> Option<usize> {
        self.0.lock().ok().and_then(|mut m| m.remove(key))
    }
}

impl Regional {
    /// `stores` in the order of `rules`' regions.
    pub fn new(rules: Regions, stores: Vec<DynStore>) -> Result<Self, StoreError> {
        if rules.list().len() != stores.len() || stores.is_empty() {
            return Err(StoreError::Internal("one store per configured region is needed".into()));
        }
        let regions: Arc<[Region]> = rules
            .list()
            .iter()
            .zip(stores)
            .map(|(r, store)| Region { name: r.name.clone(), store })
            .collect::<Vec<_>>()
            .into();
        Ok(Self {
            home: rules.default_index(),
            rules: Arc::new(rules),
            regions,
            leads: Locator::new(),
            waiting: Locator::new(),
            deliveries: Locator::new(),
        })
    }

    fn home(&self) -> &DynStore {
        &self.regions[self.home].store
    }

    fn store(&self, region: usize) -> &DynStore {
        &self.regions[region].store
    }

    /// The region holding the lead, if any does.
    async fn locate(&self, id: LeadId) -> Result<Option<usize>, StoreError> {
        if let Some(r) = self.leads.get(&id) {
            return Ok(Some(r));
        }
        for (r, region) in self.regions.iter().enumerate() {
            if region.store.get_lead(id).await?.is_some() {
                self.leads.put(id, r);
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// The store holding the lead; the home store when none does (which answers "no such
    /// lead" as a single store would).
    async fn of_lead(&self, id: LeadId) -> Result<&DynStore, StoreError> {
        Ok(self.store(self.locate(id).await?.unwrap_or(self.home)))
    }

    /// The region of the first of `leads` found (a person's leads share one region).
    async fn of_leads(&self, leads: &[LeadId]) -> Result<&DynStore, StoreError> {
        for id in leads {
            if let Some(r) = self.locate(*id).await? {
                return Ok(self.store(r));
            }
        }
        Ok(self.home())
    }

    /// The region already holding a lead with this email.
    async fn region_of_email(&self, email: &Email, skip: Option<usize>) -> Result<Option<usize>, StoreError> {
        for (r, region) in self.regions.iter().enumerate() {
            if Some(r) == skip {
                continue;
            }
            if let Some(lead) = region.store.find_leads_by_email(email).await?.first() {
                self.leads.put(lead.id, r);
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Where each new submission goes: the region of the person's stored lead, else the
    /// one its country or source assigns. Only the other regions are searched (a person
    /// stored in the assigned one is found there by the capture itself), one read per
    /// region for the whole batch.
    async fn place(&self, items: &[CaptureItem]) -> Result<Vec<usize>, StoreError> {
        let mut places: Vec<usize> = items
            .iter()
            .map(|i| self.rules.assign(i.candidate.fields.country.as_deref(), i.submission.source.as_str()))
            .collect();
        if self.regions.len() < 2 {
            return Ok(places);
        }
        let mut settled = vec![false; items.len()];
        for (r, region) in self.regions.iter().enumerate() {
            let asked: Vec<(usize, &Email)> = items
                .iter()
                .enumerate()
                .filter(|(i, _)| places[*i] != r && !settled[*i])
                .filter_map(|(i, item)| item.candidate.fields.email.as_ref().map(|e| (i, e)))
                .collect();
            if asked.is_empty() {
                continue;
            }
            let known = region.store.known_emails(asked.iter().map(|(_, e)| (*e).clone()).collect()).await?;
            for (i, email) in asked {
                if known.contains(email) {
                    places[i] = r;
                    settled[i] = true;
                }
            }
        }
        Ok(places)
    }

    /// Where a raw submission waits before it is settled: its source's region, else home
    /// (nothing read from it can be trusted yet).
    fn place_raw(&self, submission: &RawSubmission) -> usize {
        self.rules.assign(None, submission.source.as_str())
    }

    /// Runs `f` on every region in order, collecting the answers.
    async fn each<'a, T, F, Fut>(&'a self, f: F) -> Result<Vec<T>, StoreError>
    where
        F: Fn(&'a DynStore) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + 'a,
    {
        let mut out = Vec::with_capacity(self.regions.len());
        for region in self.regions.iter() {
            out.push(f(&region.store).await?);
        }
        Ok(out)
    }

    /// The first region's `Some` answer, with the region.
    async fn find<'a, T, F, Fut>(&'a self, f: F) -> Result<Option<(usize, T)>, StoreError>
    where
        F: Fn(&'a DynStore) -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, StoreError>> + 'a,
    {
        for (r, region) in self.regions.iter().enumerate() {
            if let Some(found) = f(&region.store).await? {
                return Ok(Some((r, found)));
            }
        }
        Ok(None)
    }

    async fn sum<'a, F, Fut>(&'a self, f: F) -> Result<u64, StoreError>
    where
        F: Fn(&'a DynStore) -> Fut,
        Fut: std::future::Future<Output = Result<u64, StoreError>> + 'a,
    {
        Ok(self.each(f).await?.into_iter().sum())
    }

    /// Lists, each in ascending `key` order after the same cursor, as one list.
    fn merged<T, K: Ord>(lists: Vec<Vec<T>>, limit: usize, key: impl Fn(&T) -> K) -> Vec<T> {
        let mut all: Vec<T> = lists.into_iter().flatten().collect();
        all.sort_by_key(key);
        all.truncate(limit);
        all
    }

    /// The earliest of the regions' times.
    fn earliest(times: Vec<Option<OffsetDateTime>>) -> Option<OffsetDateTime> {
        times.into_iter().flatten().min()
    }

    fn learn_leads<'l>(&self, region: usize, leads: impl IntoIterator<Item = &'l Lead>) {
        for lead in leads {
            self.leads.put(lead.id, region);
        }
    }

    /// Puts answers made per region back in the callers' order.
    fn in_order<T>(n: usize, parts: Vec<(Vec<usize>, Vec<T>)>) -> Result<Vec<T>, StoreError> {
        let mut slots: Vec<Option<T>> = (0..n).map(|_| None).collect();
        for (positions, answers) in parts {
            if positions.len() != answers.len() {
                return Err(StoreError::Internal("a region answered for more or fewer items than it was given".into()));
            }
            for (i, answer) in positions.into_iter().zip(answers) {
                slots[i] = Some(answer);
            }
        }
        slots.into_iter().map(|s| s.ok_or_else(|| StoreError::Internal("an item went unanswered".into()))).collect()
    }

    /// Sends each item to its region's store, a call per region, and answers in the items'
    /// order.
    async fn scatter<'a, T, U, F, Fut>(
        &'a self,
        items: Vec<T>,
        places: Vec<usize>,
        call: F,
    ) -> Result<Vec<U>, StoreError>
    where
        F: Fn(&'a DynStore, Vec<T>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<U>, StoreError>> + 'a,
    {
        let n = items.len();
        let mut parts = Vec::new();
        for (r, positions, items) in self.grouped(items, places) {
            parts.push((positions, call(self.store(r), items).await?));
        }
        Self::in_order(n, parts)
    }

    /// Groups items by region, keeping each item's position.
    fn grouped<T>(&self, items: Vec<T>, regions: Vec<usize>) -> Vec<(usize, Vec<usize>, Vec<T>)> {
        let mut groups: BTreeMap<usize, (Vec<usize>, Vec<T>)> = BTreeMap::new();
        for (i, (item, r)) in items.into_iter().zip(regions).enumerate() {
            let group = groups.entry(r).or_default();
            group.0.push(i);
            group.1.push(item);
        }
        groups.into_iter().map(|(r, (positions, items))| (r, positions, items)).collect()
    }

    /// Removes the waiting copies of submissions now stored in `region`, wherever else
    /// they waited.
    async fn drop_waiting_copies(&self, region: usize, ids: &[SubmissionId]) -> Result<(), StoreError> {
        let mut elsewhere: BTreeMap<usize, Vec<SubmissionId>> = BTreeMap::new();
        for id in ids {
            if let Some(r) = self.waiting.take(id)
                && r != region
            {
                elsewhere.entry(r).or_default().push(*id);
            }
        }
        for (r, ids) in elsewhere {
            self.store(r).discard_submissions(ids).await?;
        }
        Ok(())
    }

    /// Each region's page of an inbox listing, as one page; where each waits is learnt.
    fn merged_waiting(&self, lists: Vec<Vec<StoredSubmission>>, limit: usize) -> Vec<StoredSubmission> {
        for (r, list) in lists.iter().enumerate() {
            self.learn_waiting(r, list);
        }
        Self::merged(lists, limit, |s| s.submission.id)
    }

    fn learn_waiting(&self, region: usize, submissions: &[StoredSubmission]) {
        for s in submissions {
            self.waiting.put(s.submission.id, region);
        }
    }
}

#[async_trait]
impl Store for Regional {
    fn with_rules(&self, rules: Rules) -> DynStore {
        let regions: Vec<Region> = self
            .regions
            .iter()
            .map(|r| Region { name: r.name.clone(), store: r.store.with_rules(rules.clone()) })
            .collect();
        Arc::new(Self {
            regions: regions.into(),
            rules: self.rules.clone(),
            home: self.home,
            leads: self.leads.clone(),
            waiting: self.waiting.clone(),
            deliveries: self.deliveries.clone(),
        })
    }

    fn regions(&self) -> Vec<(String, DynStore)> {
        self.regions.iter().map(|r| (r.name.clone(), r.store.clone())).collect()
    }

    async fn capture(&self, items: Vec<CaptureItem>) -> Result<Vec<Captured>, StoreError> {
        let n = items.len();
        let places = self.place(&items).await?;
        // Each region commits on its own writer: the groups go in at once.
        let groups = self.grouped(items, places).into_iter().map(|(r, positions, items)| async move {
            let ids: Vec<SubmissionId> = items.iter().map(|i| i.submission.id).collect();
            let captured = self.store(r).capture(items).await?;
            for c in &captured {
                if let Captured::Settled { lead, .. } = c {
                    self.leads.put(lead.id, r);
                }
            }
            self.drop_waiting_copies(r, &ids).await?;
            Ok::<_, StoreError>((positions, captured))
        });
        let parts = futures_util::future::try_join_all(groups).await?;
        Self::in_order(n, parts)
    }

    async fn enqueue(&self, submissions: Vec<RawSubmission>) -> Result<(), StoreError> {
        let places: Vec<usize> = submissions.iter().map(|s| self.place_raw(s)).collect();
        for (r, _, submissions) in self.grouped(submissions, places) {
            for s in &submissions {
                self.waiting.put(s.id, r);
            }
            self.store(r).enqueue(submissions).await?;
        }
        Ok(())
    }

    async fn pending_submissions(&self, limit: usize) -> Result<Vec<RawSubmission>, StoreError> {
        let mut out = Vec::new();
        for (r, region) in self.regions.iter().enumerate() {
            if out.len() >= limit {
                break;
            }
            let found = region.store.pending_submissions(limit - out.len()).await?;
            for s in &found {
                self.waiting.put(s.id, r);
            }
            out.extend(found);
        }
        Ok(out)
    }

    async fn reject_submission(&self, id: SubmissionId, errors: Vec<FieldError>) -> Result<(), StoreError> {
        let region = match self.waiting.get(&id) {
            Some(r) => r,
            None => self.find(|s| s.get_submission(id)).await?.map_or(self.home, |(r, _)| r),
        };
        self.store(region).reject_submission(id, errors).await
    }

    async fn quarantine(&self, items: Vec<(RawSubmission, Vec<FieldError>)>) -> Result<Vec<Captured>, StoreError> {
        let n = items.len();
        let places: Vec<usize> = items.iter().map(|(s, _)| self.place_raw(s)).collect();
        let mut parts = Vec::new();
        for (r, positions, items) in self.grouped(items, places) {
            for (s, _) in &items {
                self.waiting.put(s.id, r);
            }
            parts.push((positions, self.store(r).quarantine(items).await?));
        }
        Self::in_order(n, parts)
    }

    async fn list_quarantine(
        &self,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        let lists = self.each(|s| s.list_quarantine(source.clone(), after, limit)).await?;
        Ok(self.merged_waiting(lists, limit))
    }

    async fn list_pending(
        &self,
        source: Option<SourceName>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        let lists = self.each(|s| s.list_pending(source.clone(), after, limit)).await?;
        Ok(self.merged_waiting(lists, limit))
    }

    async fn get_submission(&self, id: SubmissionId) -> Result<Option<StoredSubmission>, StoreError> {
        let found = self.find(|s| s.get_submission(id)).await?;
        Ok(found.map(|(r, s)| {
            self.learn_waiting(r, std::slice::from_ref(&s));
            s
        }))
    }

    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        if let Some(r) = self.leads.get(&id) {
            return self.store(r).get_lead(id).await;
        }
        let found = self.find(|s| s.get_lead(id)).await?;
        Ok(found.map(|(r, lead)| {
            self.leads.put(id, r);
            lead
        }))
    }

    async fn find_leads_by_email(&self, email: &Email) -> Result<Vec<Lead>, StoreError> {
        let mut out = Vec::new();
        for (r, region) in self.regions.iter().enumerate() {
            let leads = region.store.find_leads_by_email(email).await?;
            self.learn_leads(r, &leads);
            out.extend(leads);
        }
        Ok(out)
    }

    async fn reencrypt(&self, limit: usize) -> Result<crate::cipher::Reencrypted, StoreError> {
        let mut all = crate::cipher::Reencrypted { rows: 0, done: true };
        for step in self.each(|s| s.reencrypt(limit)).await? {
            all.rows += step.rows;
            all.done &= step.done;
        }
        Ok(all)
    }

    async fn known_emails(&self, emails: Vec<Email>) -> Result<Vec<Email>, StoreError> {
        let mut known: Vec<Email> = Vec::new();
        for found in self.each(|s| s.known_emails(emails.clone())).await? {
            for e in found {
                if !known.contains(&e) {
                    known.push(e);
                }
            }
        }
        Ok(known)
    }

    async fn lead_history(&self, id: LeadId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.of_lead(id).await?.lead_history(id).await
    }

    async fn list_leads(&self, after: Option<LeadId>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        let mut lists = Vec::new();
        for (r, region) in self.regions.iter().enumerate() {
            let leads = region.store.list_leads(after, limit).await?;
            self.learn_leads(r, &leads);
            lists.push(leads);
        }
        Ok(Self::merged(lists, limit, |l| l.id))
    }

    async fn count_leads(&self) -> Result<u64, StoreError> {
        self.sum(|s| s.count_leads()).await
    }

    async fn create_key(&self, key: ApiKey, hash: TokenHash) -> Result<(), StoreError> {
        self.home().create_key(key, hash).await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.home().list_keys().await
    }

    async fn revoke_key(&self, name_or_id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.home().revoke_key(name_or_id).await
    }

    async fn key_by_hash(&self, hash: TokenHash) -> Result<Option<ApiKey>, StoreError> {
        self.home().key_by_hash(hash).await
    }

    async fn rotate_key(
        &self,
        old: KeyId,
        grace_until: OffsetDateTime,
        new: ApiKey,
        hash: TokenHash,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.home().rotate_key(old, grace_until, new, hash).await
    }

    async fn touch_keys(&self, used: Vec<(KeyId, OffsetDateTime)>) -> Result<(), StoreError> {
        self.home().touch_keys(used).await
    }

    async fn create_import(&self, job: ImportJob, file: Vec<u8>) -> Result<(), StoreError> {
        self.home().create_import(job, file).await
    }

    async fn update_import(&self, job: ImportJob, report: Option<Vec<u8>>) -> Result<(), StoreError> {
        self.home().update_import(job, report).await
    }

    async fn get_import(&self, id: ImportId) -> Result<Option<ImportJob>, StoreError> {
        self.home().get_import(id).await
    }

    async fn import_file(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError> {
        self.home().import_file(id).await
    }

    async fn import_report(&self, id: ImportId) -> Result<Option<Vec<u8>>, StoreError> {
        self.home().import_report(id).await
    }

    async fn unfinished_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        self.home().unfinished_imports().await
    }

    async fn list_reviews(&self, after: Option<ReviewId>, limit: usize) -> Result<Vec<Review>, StoreError> {
        let lists = self.each(|s| s.list_reviews(after, limit)).await?;
        Ok(Self::merged(lists, limit, |r| r.id))
    }

    async fn get_review(&self, id: ReviewId) -> Result<Option<Review>, StoreError> {
        Ok(self.find(|s| s.get_review(id)).await?.map(|(_, review)| review))
    }

    async fn decide_review(&self, id: ReviewId, decision: ReviewStatus) -> Result<Option<Review>, StoreError> {
        match self.find(|s| s.get_review(id)).await? {
            Some((r, _)) => self.store(r).decide_review(id, decision).await,
            None => Ok(None),
        }
    }

    async fn merge_leads(
        &self,
        survivor: LeadId,
        absorbed: LeadId,
        explanation: Explanation,
    ) -> Result<bool, StoreError> {
        match (self.locate(survivor).await?, self.locate(absorbed).await?) {
            (Some(a), Some(b)) if a == b => self.store(a).merge_leads(survivor, absorbed, explanation).await,
            (Some(_), Some(_)) => Err(StoreError::Conflict("the two leads live in different regions".into())),
            _ => Ok(false),
        }
    }

    async fn unmerge(&self, absorbed: LeadId) -> Result<Option<LeadId>, StoreError> {
        self.of_lead(absorbed).await?.unmerge(absorbed).await
    }

    async fn split_submission(
        &self,
        lead: LeadId,
        submission: SubmissionId,
        candidate: Candidate,
    ) -> Result<Option<Lead>, StoreError> {
        self.of_lead(lead).await?.split_submission(lead, submission, candidate).await
    }

    async fn add_review(
        &self,
        lead: LeadId,
        candidate: LeadId,
        score: f64,
        evidence: Vec<Evidence>,
    ) -> Result<bool, StoreError> {
        match (self.locate(lead).await?, self.locate(candidate).await?) {
            (Some(a), Some(b)) if a == b => self.store(a).add_review(lead, candidate, score, evidence).await,
            _ => Ok(false),
        }
    }

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.find(|s| s.get_account(id)).await?.map(|(_, account)| account))
    }

    async fn list_accounts(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError> {
        let lists = self.each(|s| s.list_accounts(after, limit)).await?;
        Ok(Self::merged(lists, limit, |a| a.id))
    }

    async fn account_leads(&self, id: AccountId, after: Option<LeadId>, limit: usize) -> Result<Vec<Lead>, StoreError> {
        match self.find(|s| s.get_account(id)).await? {
            Some((r, _)) => self.store(r).account_leads(id, after, limit).await,
            None => Ok(Vec::new()),
        }
    }

    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Option<Account>, StoreError> {
        match self.find(|s| s.get_account(id)).await? {
            Some((r, _)) => self.store(r).update_account(id, update).await,
            None => Ok(None),
        }
    }

    async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<EventOutcome>, StoreError> {
        let n = events.len();
        let mut places = Vec::with_capacity(n);
        for e in &events {
            let by_lead = match e.event.lead_id {
                Some(id) => self.locate(id).await?,
                None => None,
            };
            let email = e.event.identity.email.as_deref().and_then(|s| Email::parse(s).ok());
            let region = match (by_lead, email) {
                (Some(r), _) => Some(r),
                (None, Some(email)) => self.region_of_email(&email, None).await?,
                (None, None) => None,
            };
            places.push(region.unwrap_or(self.home));
        }
        self.scatter(events, places, |store, events| store.record_events(events)).await
    }

    async fn lead_events(&self, lead: LeadId, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.of_lead(lead).await?.lead_events(lead, limit).await
    }

    async fn touchpoints(&self, lead: LeadId) -> Result<Vec<Touchpoint>, StoreError> {
        self.of_lead(lead).await?.touchpoints(lead).await
    }

    async fn transition_lead(
        &self,
        lead: LeadId,
        to: String,
        actor: String,
        reason: Option<String>,
    ) -> Result<Option<Result<Lead, TransitionError>>, StoreError> {
        self.of_lead(lead).await?.transition_lead(lead, to, actor, reason).await
    }

    async fn record_feedback(&self, items: Vec<Feedback>) -> Result<Vec<FeedbackResult>, StoreError> {
        let n = items.len();
        let mut places = Vec::with_capacity(n);
        for f in &items {
            let who = &f.identity;
            let mut region = match who.lead_id {
                Some(id) => self.locate(id).await?,
                None => None,
            };
            if region.is_none()
                && let (Some(destination), Some(crm)) = (&who.crm_destination, &who.crm_id)
            {
                region = self.find(|s| s.crm_record_lead(destination, crm)).await?.map(|(r, _)| r);
            }
            if region.is_none()
                && let Some(email) = &who.email
            {
                region = self.region_of_email(email, None).await?;
            }
            places.push(region.unwrap_or(self.home));
        }
        self.scatter(items, places, |store, items| store.record_feedback(items)).await
    }

    async fn link_crm_record(&self, destination: &str, crm_id: &str, lead: LeadId) -> Result<u64, StoreError> {
        self.of_lead(lead).await?.link_crm_record(destination, crm_id, lead).await
    }

    async fn crm_record_lead(&self, destination: &str, crm_id: &str) -> Result<Option<LeadId>, StoreError> {
        Ok(self.find(|s| s.crm_record_lead(destination, crm_id)).await?.map(|(_, id)| id))
    }

    async fn list_feedback(
        &self,
        source: Option<String>,
        after: Option<FeedbackId>,
        limit: usize,
    ) -> Result<Vec<StoredFeedback>, StoreError> {
        let lists = self.each(|s| s.list_feedback(source.clone(), after, limit)).await?;
        Ok(Self::merged(lists, limit, |f| f.feedback.id))
    }

    async fn report_disqualifications(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        stage: &str,
    ) -> Result<Vec<ReasonCount>, StoreError> {
        let mut totals: BTreeMap<(String, Option<String>, Option<String>), u64> = BTreeMap::new();
        for list in self.each(|s| s.report_disqualifications(from, to, stage)).await? {
            for c in list {
                *totals.entry((c.source, c.campaign, c.reason)).or_default() += c.leads;
            }
        }
        let mut out: Vec<ReasonCount> = totals
            .into_iter()
            .map(|((source, campaign, reason), leads)| ReasonCount { source, campaign, reason, leads })
            .collect();
        // As each store orders it: the most leads first.
        out.sort_by_key(|c| std::cmp::Reverse(c.leads));
        Ok(out)
    }

    async fn rescore_lead(&self, lead: LeadId) -> Result<Option<Lead>, StoreError> {
        self.of_lead(lead).await?.rescore_lead(lead).await
    }

    async fn report_sources(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        latest: bool,
    ) -> Result<Vec<SourceCount>, StoreError> {
        let mut totals: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
        for list in self.each(|s| s.report_sources(from, to, latest)).await? {
            for c in list {
                *totals.entry((c.source, c.campaign)).or_default() += c.leads;
            }
        }
        let mut out: Vec<SourceCount> =
            totals.into_iter().map(|((source, campaign), leads)| SourceCount { source, campaign, leads }).collect();
        out.sort_by(|a, b| b.leads.cmp(&a.leads).then_with(|| (&a.source, &a.campaign).cmp(&(&b.source, &b.campaign))));
        Ok(out)
    }

    async fn report_stages(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<Vec<StageCount>, StoreError> {
        let mut totals: BTreeMap<(String, Option<String>, String), u64> = BTreeMap::new();
        for list in self.each(|s| s.report_stages(from, to)).await? {
            for c in list {
                *totals.entry((c.source, c.campaign, c.stage)).or_default() += c.leads;
            }
        }
        Ok(totals
            .into_iter()
            .map(|((source, campaign, stage), leads)| StageCount { source, campaign, stage, leads })
            .collect())
    }

    async fn report_attendance(&self, event: Option<String>) -> Result<Vec<crate::AttendanceCount>, StoreError> {
        let mut totals: BTreeMap<(String, String, String), (Option<String>, u64, u64)> = BTreeMap::new();
        for list in self.each(|s| s.report_attendance(event.clone())).await? {
            for c in list {
                let t = totals.entry((c.event, c.status, c.stage)).or_default();
                t.0 = t.0.take().or(c.name);
                t.1 += c.leads;
                t.2 += c.minutes;
            }
        }
        Ok(totals
            .into_iter()
            .map(|((event, status, stage), (name, leads, minutes))| crate::AttendanceCount {
                event,
                name,
                status,
                stage,
                leads,
                minutes,
            })
            .collect())
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        let mut out = Vec::new();
        for (r, region) in self.regions.iter().enumerate() {
            if out.len() >= limit {
                break;
            }
            let claimed = region.store.claim_deliveries(limit - out.len(), lease, now).await?;
            for d in &claimed {
                self.deliveries.put(d.id.clone(), r);
            }
            out.extend(claimed);
        }
        Ok(out)
    }

    async fn record_delivery(&self, attempt: DeliveryAttempt) -> Result<(), StoreError> {
        let region = match self.deliveries.take(&attempt.delivery_id) {
            Some(r) => r,
            None => self.find(|s| s.get_delivery(&attempt.delivery_id)).await?.map_or(self.home, |(r, _)| r),
        };
        self.store(region).record_delivery(attempt).await
    }

    async fn next_delivery_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(Self::earliest(self.each(|s| s.next_delivery_due()).await?))
    }

    async fn list_deliveries(
        &self,
        status: DeliveryStatus,
        destination: Option<String>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<OutboxDelivery>, StoreError> {
        // Ordered by each store's own sequence: region by region, the cursor's region first.
        let start = match &after {
            Some(id) => self.find(|s| s.get_delivery(id)).await?.map_or(0, |(r, _)| r),
            None => 0,
        };
        let mut cursor = after;
        let mut out = Vec::new();
        for region in self.regions.iter().skip(start) {
            if out.len() >= limit {
                break;
            }
            out.extend(
                region.store.list_deliveries(status, destination.clone(), cursor.take(), limit - out.len()).await?,
            );
        }
        Ok(out)
    }

    async fn lead_deliveries(
        &self,
        lead: LeadId,
        limit: usize,
    ) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        self.of_lead(lead).await?.lead_deliveries(lead, limit).await
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        Ok(self.find(|s| s.get_delivery(id)).await?.map(|(_, d)| d))
    }

    async fn replay_delivery(&self, id: &str, now: OffsetDateTime) -> Result<Option<OutboxDelivery>, StoreError> {
        match self.find(|s| s.get_delivery(id)).await? {
            Some((r, _)) => self.store(r).replay_delivery(id, now).await,
            None => Ok(None),
        }
    }

    async fn replay_deliveries(&self, filter: ReplayFilter, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.sum(|s| s.replay_deliveries(filter.clone(), now)).await
    }

    async fn enqueue_deliveries(&self, deliveries: Vec<leadflow_core::changes::Delivery>) -> Result<u64, StoreError> {
        let mut by_region: BTreeMap<usize, Vec<leadflow_core::changes::Delivery>> = BTreeMap::new();
        for d in deliveries {
            let r = self.locate(d.lead).await?.unwrap_or(self.home);
            by_region.entry(r).or_default().push(d);
        }
        let mut queued = 0;
        for (r, deliveries) in by_region {
            queued += self.store(r).enqueue_deliveries(deliveries).await?;
        }
        Ok(queued)
    }

    async fn try_claim_period(&self, job: &str, period_start: OffsetDateTime) -> Result<bool, StoreError> {
        self.home().try_claim_period(job, period_start).await
    }

    /// Each region's feed is in its own commit order; across regions (independent
    /// databases, no common order) the pages interleave by time. The cursor holds every
    /// region's place, so each region's changes arrive once and in order.
    async fn changes(&self, after: &feed::Cursor, limit: usize) -> Result<feed::Page, StoreError> {
        if after.0.iter().skip(self.regions.len()).any(|&p| p != 0) {
            return Err(StoreError::UnknownCursor(format!(
                "cursor {after} names more regions than the {} configured",
                self.regions.len()
            )));
        }
        let mut pages = Vec::with_capacity(self.regions.len());
        for (r, region) in self.regions.iter().enumerate() {
            let page = region.store.changes(&feed::Cursor(vec![after.at(r)]), limit).await.map_err(|e| match e {
                StoreError::UnknownCursor(_) => {
                    StoreError::UnknownCursor(format!("cursor {after} is ahead of region {}'s changes", region.name))
                }
                other => other,
            })?;
            pages.push(page.changes);
        }
        feed::interleave(after, pages, limit).map_err(StoreError::Corrupt)
    }

    async fn get_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.home().get_cursor(name).await
    }

    async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.home().set_cursor(name, value).await
    }

    async fn resolve_queued(&self, limit: usize, now: OffsetDateTime) -> Result<ResolveBatch, StoreError> {
        let mut batch = ResolveBatch::default();
        for region in self.regions.iter() {
            batch.extend(region.store.resolve_queued(limit, now).await?);
        }
        Ok(batch)
    }

    async fn resolve_backlog(&self) -> Result<u64, StoreError> {
        self.sum(|s| s.resolve_backlog()).await
    }

    async fn route_queued(&self, limit: usize, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError> {
        Ok(self.each(|s| s.route_queued(limit, now)).await?.into_iter().flatten().collect())
    }

    async fn run_sla(&self, limit: usize, now: OffsetDateTime) -> Result<Vec<RoutedLead>, StoreError> {
        Ok(self.each(|s| s.run_sla(limit, now)).await?.into_iter().flatten().collect())
    }

    async fn assign_lead(
        &self,
        lead: LeadId,
        owner: Option<String>,
        actor: String,
    ) -> Result<Option<(Lead, bool)>, StoreError> {
        self.of_lead(lead).await?.assign_lead(lead, owner, actor).await
    }

    async fn next_sla_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(Self::earliest(self.each(|s| s.next_sla_due()).await?))
    }

    async fn erase_lead(
        &self,
        lead: LeadId,
        actor: String,
        reason: Option<String>,
    ) -> Result<Option<ErasureReceipt>, StoreError> {
        // An import's stored file may hold the person's row, whichever region they are in.
        if let Some(import) = self.home().unfinished_imports().await?.first() {
            return Err(leadflow_core::erase::plan::Refused(import.id).into());
        }
        self.of_lead(lead).await?.erase_lead(lead, actor, reason).await
    }

    async fn health_cells(
        &self,
        query: leadflow_core::health::Query,
    ) -> Result<Vec<leadflow_core::health::Cell>, StoreError> {
        use leadflow_core::health::Cell;
        let mut totals: BTreeMap<(String, String, i64, String), Cell> = BTreeMap::new();
        for cells in self.each(|s| s.health_cells(query.clone())).await? {
            for c in cells {
                let key = (format!("{:?}/{:?}", c.scope, c.level), c.name.clone(), c.bucket, c.metric.clone());
                match totals.get_mut(&key) {
                    Some(total) => total.value += c.value,
                    None => {
                        totals.insert(key, c);
                    }
                }
            }
        }
        Ok(totals.into_values().collect())
    }

    async fn health_seen(&self) -> Result<Vec<Seen>, StoreError> {
        let mut seen: BTreeMap<(String, String), Seen> = BTreeMap::new();
        for list in self.each(|s| s.health_seen()).await? {
            for s in list {
                let key = (format!("{:?}", s.scope), s.name.clone());
                match seen.get_mut(&key) {
                    Some(known) => {
                        known.first_at = known.first_at.min(s.first_at);
                        known.last_at = known.last_at.max(s.last_at);
                    }
                    None => {
                        seen.insert(key, s);
                    }
                }
            }
        }
        Ok(seen.into_values().collect())
    }

    async fn health_backlogs(
        &self,
        destinations: Vec<String>,
        sources: Vec<String>,
    ) -> Result<leadflow_core::health::Backlogs, StoreError> {
        let cap = leadflow_core::health::BACKLOG_CAP;
        let mut total = leadflow_core::health::Backlogs::default();
        for b in self.each(|s| s.health_backlogs(destinations.clone(), sources.clone())).await? {
            for (name, d) in b.destinations {
                let t = total.destinations.entry(name).or_default();
                t.pending = (t.pending + d.pending).min(cap);
                t.dead = (t.dead + d.dead).min(cap);
                t.needs_data = (t.needs_data + d.needs_data).min(cap);
                t.oldest_pending_at = Self::earliest(vec![t.oldest_pending_at, d.oldest_pending_at]);
            }
            for (name, n) in b.quarantine {
                let t = total.quarantine.entry(name).or_default();
                *t = (*t + n).min(cap);
            }
            for (name, n) in b.pending {
                let t = total.pending.entry(name).or_default();
                *t = (*t + n).min(cap);
            }
            for (name, at) in b.oldest_pending {
                let t = total.oldest_pending.entry(name).or_insert(at);
                *t = (*t).min(at);
            }
        }
        Ok(total)
    }

    async fn count(&self, tally: leadflow_core::health::Tally) -> Result<(), StoreError> {
        self.home().count(tally).await
    }

    async fn prune_health(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.sum(|s| s.prune_health(now)).await
    }

    async fn alert_state(&self) -> Result<AlertState, StoreError> {
        self.home().alert_state().await
    }

    async fn apply_alerts(&self, step: leadflow_core::health::alerts::Step) -> Result<(), StoreError> {
        self.home().apply_alerts(step).await
    }

    async fn list_episodes(
        &self,
        state: Option<leadflow_core::health::alerts::State>,
        limit: usize,
    ) -> Result<Vec<leadflow_core::health::alerts::Episode>, StoreError> {
        self.home().list_episodes(state, limit).await
    }

    async fn get_episode(&self, id: &str) -> Result<Option<leadflow_core::health::alerts::Episode>, StoreError> {
        self.home().get_episode(id).await
    }

    async fn acknowledge_episode(
        &self,
        id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<leadflow_core::health::alerts::Episode>, StoreError> {
        self.home().acknowledge_episode(id, by, now).await
    }

    async fn silence(&self, scope: &str, until: OffsetDateTime, by: &str) -> Result<(), StoreError> {
        self.home().silence(scope, until, by).await
    }

    async fn claim_notifications(
        &self,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        self.home().claim_notifications(limit, lease, now).await
    }

    async fn record_notification(
        &self,
        id: &str,
        result: NotificationResult,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.home().record_notification(id, result, now).await
    }

    async fn episode_notifications(&self, episode: &str) -> Result<Vec<StoredNotification>, StoreError> {
        self.home().episode_notifications(episode).await
    }

    async fn suppress(&self, entries: Vec<Suppression>) -> Result<u64, StoreError> {
        self.home().suppress(entries).await
    }

    async fn suppressed(&self, hashes: Vec<String>) -> Result<Vec<String>, StoreError> {
        self.home().suppressed(hashes).await
    }

    async fn lift_suppressions(&self, hashes: Vec<String>) -> Result<u64, StoreError> {
        self.home().lift_suppressions(hashes).await
    }

    async fn discard_submissions(&self, ids: Vec<SubmissionId>) -> Result<u64, StoreError> {
        for id in &ids {
            self.waiting.take(id);
        }
        self.sum(|s| s.discard_submissions(ids.clone())).await
    }

    async fn record_consent(
        &self,
        lead: LeadId,
        purpose: String,
        state: leadflow_core::consent::State,
        actor: Option<String>,
    ) -> Result<Option<Lead>, StoreError> {
        self.of_lead(lead).await?.record_consent(lead, purpose, state, actor).await
    }

    async fn consent_ledger(&self, lead: LeadId) -> Result<Vec<(LeadId, leadflow_core::consent::Entry)>, StoreError> {
        self.of_lead(lead).await?.consent_ledger(lead).await
    }

    async fn append_audit(
        &self,
        entries: Vec<leadflow_core::audit::NewEntry>,
    ) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        // An entry naming a lead joins the chain of the lead's region; the rest, home's.
        let n = entries.len();
        let mut places = Vec::with_capacity(n);
        for e in &entries {
            let region = match e.target.parse::<LeadId>() {
                Ok(id) => self.locate(id).await?,
                Err(_) => None,
            };
            places.push(region.unwrap_or(self.home));
        }
        self.scatter(entries, places, |store, entries| store.append_audit(entries)).await
    }

    async fn list_audit(&self, filter: AuditFilter) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        // Each region keeps its own chain, numbered on its own: a listing reads one chain,
        // the named region's, the named lead's, else home's.
        let by_region = filter.region.as_deref().and_then(|name| self.regions.iter().position(|r| r.name == name));
        if filter.region.is_some() && by_region.is_none() {
            return Err(StoreError::Unsupported(format!("no region is named {:?}", filter.region)));
        }
        let by_target = match filter.target.as_deref().map(str::parse::<LeadId>) {
            Some(Ok(id)) => self.locate(id).await?,
            _ => None,
        };
        let region = by_region.or(by_target).unwrap_or(self.home);
        self.store(region).list_audit(filter).await
    }

    async fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<leadflow_core::audit::Entry>, StoreError> {
        self.home().audit_entries(after, limit).await
    }

    async fn merged_records(&self, lead: LeadId) -> Result<Vec<Lead>, StoreError> {
        self.of_lead(lead).await?.merged_records(lead).await
    }

    async fn lead_submissions(
        &self,
        leads: Vec<LeadId>,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        self.of_leads(&leads).await?.lead_submissions(leads, after, limit).await
    }

    async fn events_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<leadflow_core::EventId>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.of_leads(&leads).await?.events_of(leads, after, limit).await
    }

    async fn deliveries_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
        self.of_leads(&leads).await?.deliveries_of(leads, after, limit).await
    }

    async fn reviews_naming(&self, leads: Vec<LeadId>) -> Result<Vec<Review>, StoreError> {
        self.of_leads(&leads).await?.reviews_naming(leads).await
    }

    async fn feedback_of(
        &self,
        leads: Vec<LeadId>,
        after: Option<FeedbackId>,
        limit: usize,
    ) -> Result<Vec<StoredFeedback>, StoreError> {
        self.of_leads(&leads).await?.feedback_of(leads, after, limit).await
    }

    async fn count_expired(&self, kind: RetentionKind, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.sum(|s| s.count_expired(kind, before)).await
    }

    async fn expire(&self, kind: RetentionKind, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.sum(|s| s.expire(kind, before)).await
    }

    async fn inactive_leads(
        &self,
        before: OffsetDateTime,
        after: Option<LeadId>,
        limit: usize,
    ) -> Result<Vec<LeadId>, StoreError> {
        let lists = self.each(|s| s.inactive_leads(before, after, limit)).await?;
        Ok(Self::merged(lists, limit, |id| *id))
    }

    async fn save_retention_run(&self, run: RetentionRun) -> Result<(), StoreError> {
        self.home().save_retention_run(run).await
    }

    async fn list_retention_runs(&self, limit: usize) -> Result<Vec<RetentionRun>, StoreError> {
        self.home().list_retention_runs(limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.each(|s| s.ping()).await.map(drop)
    }

    async fn close(&self) -> Result<(), StoreError> {
        let mut first_error = None;
        for region in self.regions.iter() {
            if let Err(e) = region.store.close().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Opens every region's store (creating and migrating each) and routes between them.
pub async fn connect(
    regions: &Regions,
    rules: Rules,
    masters: Option<Arc<leadflow_core::encryption::MasterKeys>>,
) -> Result<DynStore, StoreError> {
    let mut stores = Vec::with_capacity(regions.list().len());
    for region in regions.list() {
        stores.push(super::connect_with(&region.database, rules.clone(), masters.clone()).await?);
    }
    Ok(Arc::new(Regional::new(regions.clone(), stores)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_lists_keep_the_order_and_the_limit() {
        let merged = Regional::merged(vec![vec![1, 4, 9], vec![2, 3, 10]], 4, |n| *n);
        assert_eq!(merged, [1, 2, 3, 4]);
    }

    #[test]
    fn answers_go_back_to_their_callers_positions() {
        let parts = vec![(vec![1, 3], vec!["b", "d"]), (vec![0, 2], vec!["a", "c"])];
        assert_eq!(Regional::in_order(4, parts).unwrap(), ["a", "b", "c", "d"]);
        assert!(Regional::in_order(3, vec![(vec![0], vec!["a"])]).is_err());
    }
}
