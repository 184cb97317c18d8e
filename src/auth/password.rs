use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::HashHold;

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters")
}

/// The working memory of one hash (19 MiB at our parameters). Each hashing slot keeps
/// one for the life of the process and reuses it, so a burst of sign-ins does not ask
/// the allocator for 19 MiB a time, which it then keeps per thread.
pub struct Memory(Vec<Block>);

impl Memory {
    pub fn new() -> Self {
        Memory(vec![Block::default(); params().block_count()])
    }

    fn for_params(&mut self, params: &Params) -> &mut [Block] {
        if self.0.len() < params.block_count() {
            self.0.resize(params.block_count(), Block::default());
        }
        &mut self.0[..params.block_count()]
    }
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    hash_with(password, &mut Memory::new())
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), computed in `memory`.
pub fn hash_with(password: &str, memory: &mut Memory) -> anyhow::Result<String> {
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("password hashing failed: {e}");
    let params = params();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            memory.for_params(&params),
        )
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// What a session keeps of the password its sign-in checked. A session whose account's
/// password has changed since is signed out on its next request, even one that a sign-in
/// racing the change stored after the change had ended every session.
pub fn credential_stamp(password_hash: Option<&str>) -> String {
    crate::domain::tokens::hash(password_hash.unwrap_or_default())[..16].to_string()
}

/// The stamp of the account's current password.
pub fn stamp_of(user: &crate::db::users::User) -> String {
    credential_stamp(user.password_hash.as_deref())
}

/// Verifies against the stored hash, or against a dummy one for unknown accounts so that
/// the answer takes as long whether or not the email exists.
pub fn verify_blocking(password: &str, stored: Option<&str>) -> bool {
    verify_with(password, stored, &mut Memory::new())
}

pub fn verify_with(password: &str, stored: Option<&str>, memory: &mut Memory) -> bool {
    let dummy = dummy_hash();
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    // Hashed before `real` is asked: an unknown account pays the same hash as a known one.
    let matched = matches(password, hash, memory).unwrap_or(false);
    real && matched
}

fn matches(password: &str, hash: &str, memory: &mut Memory) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    if parsed.algorithm != ARGON2ID_IDENT {
        return None;
    }
    let params = Params::try_from(&parsed).ok()?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .ok()?
        .unwrap_or_default();
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(Algorithm::Argon2id, version, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut computed,
            memory.for_params(&params),
        )
        .ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(&computed).ok()? == expected)
}

fn dummy_hash() -> &'static String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking(&crate::domain::tokens::generate()).expect("dummy hash"))
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot is taken and the queue in front of them is full: the caller
    /// is turned away at once instead of waiting behind a flood.
    #[error("too many password checks are waiting")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Runs hashes on threads of their own, one per slot, a bounded number at a time, each in
/// the working memory of its thread: memory for hashing is `slots × 19 MiB`, allocated on
/// first use and then reused, whatever the number of sign-ins. At most `queue` more wait
/// for a slot; beyond them [`Hasher::admit`] refuses at once, so a flood of sign-ins gets
/// quick refusals instead of an ever longer wait.
///
/// On Linux the hashing threads run [`HASHING_NICENESS`] below the process's own priority
/// (elsewhere, and where the system refuses, at the same priority, with a warning): a
/// flood keeps its slots busy all the time, and at the same priority the scheduler shared
/// a core evenly between a hash and a page's request, which then took twice as long.
/// Lowered, a hash gives way to any page that wants the core, and still has every core
/// nobody else wants. The price: while pages keep every core busy, hashes run some ten
/// times slower, so fewer guesses a second keep the queue full and sign-ins turned away.
#[derive(Clone)]
pub struct Hasher {
    /// Slots plus queue: a check holds one of these from admission to its end.
    admitted: Arc<Semaphore>,
    /// As many as there are hashing threads, so a job handed over always finds one free.
    running: Arc<Semaphore>,
    jobs: Arc<std::sync::mpsc::Sender<Job>>,
    hold: HashHold,
}

/// A hash to compute, given its thread's working memory. It answers through a channel of
/// its own and catches its own panic, so the thread lives on to compute the next.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// How much lower than the pages' threads the hashing threads run, added to the process's
/// own niceness (at most 19): `nice` 10 weighs about a
/// tenth of `nice` 0, so on a core that a page wants too a hash runs about a tenth of the
/// time, and a sign-in's 40 ms hash takes up to some 0.4 s while the core is contended.
pub const HASHING_NICENESS: i32 = 10;

/// A place in the hashing queue, taken before any work is done for a password check.
pub struct Admission {
    hasher: Hasher,
    _place: OwnedSemaphorePermit,
}

impl Hasher {
    /// Starts the `slots` hashing threads; they end when the last clone is dropped.
    pub fn new(slots: usize, queue: usize, hold: HashHold) -> std::io::Result<Self> {
        let slots = slots.max(1);
        let (jobs, waiting) = std::sync::mpsc::channel::<Job>();
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..slots {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name("password-hash".into())
                .spawn(move || compute_hashes(&waiting))?;
        }
        Ok(Self {
            admitted: Arc::new(Semaphore::new(slots + queue)),
            running: Arc::new(Semaphore::new(slots)),
            jobs: Arc::new(jobs),
            hold,
        })
    }

    /// [`HashError::Busy`] when the queue is full now, without taking a place: lets a
    /// caller turn a request away before doing any work for it. The queue may fill before
    /// the caller's [`Hasher::admit`] all the same.
    pub fn refuse_if_full(&self) -> Result<(), HashError> {
        if self.admitted.available_permits() == 0 {
            Err(HashError::Busy)
        } else {
            Ok(())
        }
    }

    /// A place in the queue, or [`HashError::Busy`] at once when it is full.
    pub fn admit(&self) -> Result<Admission, HashError> {
        let place = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        Ok(Admission {
            hasher: self.clone(),
            _place: place,
        })
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.admit()?.hash(password).await
    }

    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        self.admit()?.verify(password, stored).await
    }
}

/// One hashing thread: takes the next job, whichever thread's turn it is, until the
/// hasher is gone.
fn compute_hashes(waiting: &Mutex<std::sync::mpsc::Receiver<Job>>) {
    lower_this_threads_priority();
    let mut memory = None;
    loop {
        let next = waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok(job) = next else { return };
        let memory = memory.get_or_insert_with(Memory::new);
        // A job catches its hash's panic and answers it; this catches anything past that
        // (a panic payload that panics when dropped), so the thread always lives on: the
        // `running` permits count on one thread each.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(memory)));
    }
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // On Linux a thread has a niceness of its own, and `nice` changes the calling
    // thread's only, relative to what it inherited (the process's), capped at 19.
    // SAFETY: errno is this thread's own; `nice` only changes this thread's priority.
    let lowered = unsafe {
        *libc::__errno_location() = 0;
        libc::nice(HASHING_NICENESS) != -1 || *libc::__errno_location() == 0
    };
    if !lowered {
        let error = std::io::Error::last_os_error();
        tracing::warn!("password hashes run at the pages' priority: {error}");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

impl Admission {
    /// Runs `f` on a hashing thread, with its memory. The slot is held by the job itself,
    /// so it stays taken until the hash ends, whether or not anyone still waits for it.
    /// Held by the waiting request instead, a request dropped mid-hash (at shutdown; or
    /// wherever the server drops a handler whose client left, which actix's HTTP/1 did
    /// not at 4.9, its issue #3462) freed the slot while the hash ran on.
    async fn in_slot<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let hasher = &self.hasher;
        let running = hasher.running.clone().acquire_owned().await?;
        hasher.hold.pass().await;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _running = running;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(memory)))
                .map_err(|payload| crate::db::off_thread::panic_message(payload.as_ref()));
            // Nobody may be waiting any more; the hash is done all the same.
            let _ = answer.send(outcome);
        });
        hasher
            .jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the hashing threads have stopped"))?;
        match answered.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(anyhow::anyhow!("a password hash panicked: {message}")),
            Err(_) => Err(anyhow::anyhow!("the hashing threads have stopped")),
        }
    }

    pub async fn hash(self, password: String) -> Result<String, HashError> {
        Ok(self
            .in_slot(move |memory| hash_with(&password, memory))
            .await??)
    }

    /// Checks `password` against `stored` and, when it matches, hashes `new` in the same
    /// slot (a password change): asked for a second place, a right password could be
    /// turned away with 503 after all, its attempt left counted as a failure.
    pub async fn verify_then_hash(
        self,
        password: String,
        stored: Option<String>,
        new: String,
    ) -> Result<Option<String>, HashError> {
        Ok(self
            .in_slot(move |memory| {
                verify_with(&password, stored.as_deref(), memory)
                    .then(|| hash_with(&new, memory))
                    .transpose()
            })
            .await??)
    }

    pub async fn verify(self, password: String, stored: Option<String>) -> Result<bool, HashError> {
        Ok(self
            .in_slot(move |memory| verify_with(&password, stored.as_deref(), memory))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn a_hash_whose_caller_left_keeps_its_slot_until_it_ends() {
        let hasher = Hasher::new(1, 1, HashHold::default()).unwrap();
        let (started, has_started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let caller = tokio::spawn(hasher.admit().unwrap().in_slot(move |memory| {
            started.send(()).unwrap();
            released.recv().unwrap();
            memory.0[0].as_mut()[0] = 42;
        }));
        tokio::task::spawn_blocking(move || has_started.recv().unwrap())
            .await
            .unwrap();
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());

        assert_eq!(
            hasher.running.available_permits(),
            0,
            "the hash still runs, so its slot is still taken"
        );
        release.send(()).unwrap();
        let kept = hasher
            .admit()
            .unwrap()
            .in_slot(|memory| memory.0[0].as_ref()[0])
            .await
            .unwrap();
        assert_eq!(
            kept, 42,
            "the next hash runs in the memory the first one left"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_at_a_lower_priority_than_the_pages() {
        /// The 19th field of the thread's `stat`, after the name in parentheses.
        fn niceness_of_this_thread() -> i32 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            let after_name = &stat[stat.rfind(')').unwrap() + 1..];
            after_name
                .split_whitespace()
                .nth(16)
                .unwrap()
                .parse()
                .unwrap()
        }
        let pages = niceness_of_this_thread();
        let hasher = Hasher::new(2, 0, HashHold::default()).unwrap();
        let (hashing, name) = hasher
            .admit()
            .unwrap()
            .in_slot(|_memory| {
                let name = std::thread::current().name().map(str::to_string);
                (niceness_of_this_thread(), name)
            })
            .await
            .unwrap();
        assert_eq!(hashing, (pages + HASHING_NICENESS).min(19));
        assert_eq!(name.as_deref(), Some("password-hash"));
    }

    #[tokio::test]
    async fn a_password_change_answers_a_new_hash_only_when_the_current_password_matched() {
        let hasher = Hasher::new(1, 0, HashHold::default()).unwrap();
        let current = hash_blocking("current password").unwrap();
        let change = |typed: &str| {
            let (typed, stored) = (typed.to_string(), Some(current.clone()));
            let admission = hasher.admit().unwrap();
            admission.verify_then_hash(typed, stored, "the new password".into())
        };
        assert_eq!(change("not the current one").await.unwrap(), None);
        let new = change("current password")
            .await
            .unwrap()
            .expect("a new hash");
        assert!(verify_blocking("the new password", Some(&new)));
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let hash = hash_blocking("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking("correct horse battery", Some(&hash)));
        assert!(!verify_blocking("wrong horse battery", Some(&hash)));
    }

    /// Time is not asserted; the work is: the hash fills the memory it is given.
    #[test]
    fn an_unknown_account_pays_a_whole_hash() {
        let mut memory = Memory::new();
        assert!(!verify_with("any password", None, &mut memory));
        let worked = memory
            .0
            .iter()
            .filter(|block| block.as_ref().iter().any(|word| *word != 0))
            .count();
        assert_eq!(worked, params().block_count());
    }

    #[test]
    fn hashes_made_elsewhere_verify_in_reused_memory() {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        let mut memory = Memory::new();
        assert!(verify_with(
            "correct horse battery",
            Some(&theirs),
            &mut memory
        ));
        assert!(!verify_with("wrong", Some(&theirs), &mut memory));
        let ours = hash_with("correct horse battery", &mut memory).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn unknown_accounts_never_verify() {
        assert!(!verify_blocking("anything", None));
        assert!(!verify_blocking("anything", Some("not a hash")));
    }
}
