//! Batch tasks on tokio: parse, fetch and summarise a list of URLs (cano 0.12's
//! `batch_task` example, ported).
//!
//! 1. `ParseUrls` validates URL strings four at a time; bad ones are that item's error, not
//!    the batch's.
//! 2. `FetchUrls` "fetches" each valid URL three at a time (a 50 ms sleep), retries each item
//!    twice, and gives each attempt 200 ms (a per-item timeout, which cano 0.12 lacked): the
//!    slow mirror is cut off instead of holding the whole batch.
//! 3. `Summarise` needs at least half of the URLs to have succeeded.
//!
//! Outputs reach `finish` in input order whatever order items finished in. Data moves between
//! states through a [`MemoryStore`].
//!
//! ```text
//!   ParseUrls ──► FetchUrls ──► Summarise ──► Done
//! ```
//!
//! Run with `cargo run -p cano-tokio --example batch_task`.

use std::time::Duration;

use cano_tokio::shapes::batch::{BatchRunner, BatchTask};
use cano_tokio::{
    CanoError, CanoResult, MemoryStore, Resources, RetryMode, TaskConfig, TaskResult, TokioClock,
    Workflow, WorkflowExt,
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    ParseUrls,
    FetchUrls,
    Summarise,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Store,
}

struct ParseUrls;

impl BatchTask<Step, Key> for ParseUrls {
    type Item = String;
    type Output = String;

    fn concurrency(&self) -> usize {
        4
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }

    async fn load(&self, res: &Resources<Key>) -> Result<Vec<String>, CanoError> {
        let urls: Vec<String> = res.get::<MemoryStore, _>(&Key::Store)?.get("input_urls")?;
        println!("parse urls : loaded {} URLs", urls.len());
        Ok(urls)
    }

    async fn process_item(
        &self,
        _res: &Resources<Key>,
        item: &String,
    ) -> Result<String, CanoError> {
        if item.starts_with("http://") || item.starts_with("https://") {
            Ok(item.clone())
        } else {
            Err(CanoError::task_execution(format!(
                "cannot parse URL: {item}"
            )))
        }
    }

    async fn finish(
        &self,
        res: &Resources<Key>,
        outputs: Vec<Result<String, CanoError>>,
    ) -> Result<TaskResult<Step>, CanoError> {
        for error in outputs.iter().filter_map(|o| o.as_ref().err()) {
            println!("parse urls : skipped: {error}");
        }
        let valid: Vec<String> = outputs.into_iter().filter_map(Result::ok).collect();
        println!("parse urls : {} valid URLs", valid.len());
        if valid.is_empty() {
            return Err(CanoError::task_execution("no valid URLs to fetch"));
        }
        res.get::<MemoryStore, _>(&Key::Store)?
            .put("valid_urls", valid)?;
        Ok(TaskResult::Single(Step::FetchUrls))
    }
}

struct FetchUrls;

impl BatchTask<Step, Key> for FetchUrls {
    type Item = String;
    type Output = (String, usize);

    fn concurrency(&self) -> usize {
        3
    }
    fn item_retry(&self) -> RetryMode {
        RetryMode::fixed(2, Duration::from_millis(5))
    }
    fn item_timeout(&self) -> Option<Duration> {
        Some(Duration::from_millis(200))
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }

    async fn load(&self, res: &Resources<Key>) -> Result<Vec<String>, CanoError> {
        let urls: Vec<String> = res.get::<MemoryStore, _>(&Key::Store)?.get("valid_urls")?;
        println!(
            "fetch urls : fetching {} URLs (concurrency 3, 2 retries, 200 ms each)",
            urls.len()
        );
        Ok(urls)
    }

    async fn process_item(
        &self,
        _res: &Resources<Key>,
        item: &String,
    ) -> Result<(String, usize), CanoError> {
        // The legacy mirror never answers in time.
        let latency = if item.contains("legacy") { 10_000 } else { 50 };
        tokio::time::sleep(Duration::from_millis(latency)).await;
        let bytes = item.len() * 100;
        println!("fetch urls : fetched {item} → {bytes} bytes");
        Ok((item.clone(), bytes))
    }

    async fn finish(
        &self,
        res: &Resources<Key>,
        outputs: Vec<Result<(String, usize), CanoError>>,
    ) -> Result<TaskResult<Step>, CanoError> {
        for error in outputs.iter().filter_map(|o| o.as_ref().err()) {
            println!("fetch urls : failed: {error}");
        }
        let fetched: Vec<(String, usize)> = outputs.into_iter().filter_map(Result::ok).collect();
        println!("fetch urls : {} URLs fetched", fetched.len());
        res.get::<MemoryStore, _>(&Key::Store)?
            .put("fetch_results", fetched)?;
        Ok(TaskResult::Single(Step::Summarise))
    }
}

struct Summarise {
    url_count: usize,
}

impl BatchTask<Step, Key> for Summarise {
    type Item = (String, usize);
    type Output = usize;

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }

    async fn load(&self, res: &Resources<Key>) -> Result<Vec<(String, usize)>, CanoError> {
        Ok(res
            .get::<MemoryStore, _>(&Key::Store)?
            .get("fetch_results")?)
    }

    async fn process_item(
        &self,
        _res: &Resources<Key>,
        item: &(String, usize),
    ) -> Result<usize, CanoError> {
        Ok(item.1)
    }

    async fn finish(
        &self,
        _res: &Resources<Key>,
        outputs: Vec<Result<usize, CanoError>>,
    ) -> Result<TaskResult<Step>, CanoError> {
        let total: usize = outputs.iter().filter_map(|r| r.as_ref().ok()).sum();
        let succeeded = outputs.iter().filter(|r| r.is_ok()).count();
        let pct = (succeeded * 100).checked_div(self.url_count).unwrap_or(0);
        println!(
            "summarise  : {succeeded}/{} succeeded ({pct}%), {total} bytes",
            self.url_count
        );
        if pct < 50 {
            return Err(CanoError::task_execution(format!(
                "only {pct}% of URLs succeeded, below the 50% threshold"
            )));
        }
        Ok(TaskResult::Single(Step::Done))
    }
}

#[tokio::main]
async fn main() -> CanoResult<()> {
    let input_urls: Vec<String> = [
        "https://example.com/page1",
        "https://example.com/page2",
        "https://example.com/page3",
        "http://legacy.example.com/api",
        "ftp://old-server.example.com/data",
        "not-a-url",
    ]
    .map(String::from)
    .to_vec();

    println!("=== batch_task example ===");
    println!("input: {} URL strings\n", input_urls.len());

    let store = MemoryStore::new();
    store.put("input_urls", input_urls.clone())?;
    let resources = Resources::<Key>::new().insert(Key::Store, store)?;

    let clock = TokioClock::new();
    let workflow = Workflow::new(resources)
        .register(Step::ParseUrls, BatchRunner::new(ParseUrls, clock))
        .register(Step::FetchUrls, BatchRunner::new(FetchUrls, clock))
        .register(
            Step::Summarise,
            BatchRunner::new(
                Summarise {
                    url_count: input_urls.len(),
                },
                clock,
            ),
        )
        .add_exit_state(Step::Done);

    let result = workflow.orchestrate(Step::ParseUrls).await?;
    assert_eq!(result, Step::Done);
    println!("\ncompleted at {result:?}");
    Ok(())
}
