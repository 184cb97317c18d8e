//! Work that blocks (a database call, a password hash, a file write) run on tokio's
//! blocking pool, the one actix's `web::block` uses.
//!
//! Every caller's work goes through one `spawn_blocking` of a boxed job, and its answer
//! through one kind of channel, boxed too. Spawned directly, each closure type (some
//! hundred call sites) instantiated tokio's task functions (poll, harness, cell) anew;
//! the stripped binary is 0.4 MB smaller with one set. The two boxes and the channel
//! cost three small allocations a call, next to the hop to another thread that every
//! call makes anyway.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The work gave no answer: it panicked (with this message), or the runtime is stopping.
#[derive(Debug)]
pub struct Interrupted {
    panic: Option<String>,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.panic {
            Some(message) => write!(f, "work on the blocking pool panicked: {message}"),
            None => f.write_str("work on the blocking pool was dropped: the runtime is stopping"),
        }
    }
}

impl std::error::Error for Interrupted {}

/// Runs `work` on the blocking pool and answers its result. Dropping the future (a
/// client gone) leaves the work running to its end, as `spawn_blocking` does.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Interrupted> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    // The answer travels boxed, so the channel and the panic catching are compiled once
    // for every caller, not once per result type.
    spawn(
        Box::new(move || Box::new(work()) as Box<dyn Any + Send>),
        answer,
    );
    match answered.await {
        Ok(Ok(value)) => Ok(*value
            .downcast::<T>()
            .expect("the answer is the value of this call's own work")),
        Ok(Err(panicked)) => Err(panicked),
        Err(_) => Err(Interrupted { panic: None }),
    }
}

type Answer = Result<Box<dyn Any + Send>, Interrupted>;

/// The one instantiation of `spawn_blocking`. Detached: the answer comes through the
/// channel, or its sender is dropped with a job the runtime never ran.
fn spawn(
    job: Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>,
    answer: tokio::sync::oneshot::Sender<Answer>,
) {
    drop(tokio::task::spawn_blocking(move || {
        // Caught here, as tokio would catch it, to keep the message for the caller's log.
        let outcome = catch_unwind(AssertUnwindSafe(job)).map_err(|payload| Interrupted {
            panic: Some(panic_message(payload.as_ref())),
        });
        // Nobody may be waiting any more; the work is done all the same.
        let _ = answer.send(outcome);
    }));
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_answer_comes_back_from_another_thread() {
        let caller = std::thread::current().id();
        let (ran_on, answer) = run(|| (std::thread::current().id(), 6 * 7)).await.unwrap();
        assert_eq!(answer, 42);
        assert_ne!(ran_on, caller);
    }

    #[tokio::test]
    async fn work_that_panics_answers_its_message() {
        let answer = run(|| -> u32 { panic!("on purpose {}", 7) }).await;
        let error = answer.unwrap_err().to_string();
        assert!(error.contains("panicked: on purpose 7"), "{error}");
    }
}
