//! Split/join on tokio: ask four price mirrors at once and keep the best quote.
//!
//! The workflow is `Open → Quote → Pick → Done | NoQuote`. `Quote` is a split of four tasks
//! with different latencies; one of them fails. `Pick` is a [`JoinTask`]: it receives the
//! split's [`SplitResult`] (which branches succeeded, which failed, which were cancelled) and
//! reads the quotes the branches left in a shared [`MemoryStore`].
//!
//! The same workflow runs once per join strategy, to show what each one waits for. Branches
//! run as tokio tasks (`with_spawned_branches`); the ones a decided join no longer needs are
//! cancelled.
//!
//! Run with `cargo run -p cano-tokio --example split_join`.

use std::time::Duration;

use cano_tokio::{
    CanoError, JoinConfig, JoinStrategy, JoinTask, MemoryStore, Resources, SplitResult, Task,
    TaskConfig, TaskResult, Workflow, WorkflowExt,
};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Open,
    Quote,
    Pick,
    Done,
    NoQuote,
}

/// One price source: answers `answer` after `latency`.
struct Mirror {
    name: &'static str,
    latency: Duration,
    answer: Result<f64, &'static str>,
}

static MIRRORS: [Mirror; 4] = [
    Mirror {
        name: "mirror-a",
        latency: Duration::from_millis(100),
        answer: Ok(101.50),
    },
    Mirror {
        name: "mirror-b",
        latency: Duration::from_millis(250),
        answer: Ok(99.00),
    },
    Mirror {
        name: "mirror-c",
        latency: Duration::from_millis(150),
        answer: Err("connection reset"),
    },
    Mirror {
        name: "mirror-d",
        latency: Duration::from_millis(900),
        answer: Ok(98.00),
    },
];

fn store(res: &Resources) -> Result<&MemoryStore, CanoError> {
    res.get_ref::<MemoryStore, _>("quotes")
}

/// Milliseconds since `Open` ran.
fn elapsed_ms(res: &Resources) -> Result<u128, CanoError> {
    let opened: Instant = store(res)?.get("opened")?;
    Ok(opened.elapsed().as_millis())
}

/// Notes when the run started, then goes to the split.
struct Open;

impl Task<Step> for Open {
    async fn run(&self, res: &Resources) -> Result<TaskResult<Step>, CanoError> {
        let quotes = store(res)?;
        quotes.clear();
        quotes.put("opened", Instant::now())?;
        Ok(TaskResult::Single(Step::Quote))
    }
}

impl Task<Step> for &'static Mirror {
    async fn run(&self, res: &Resources) -> Result<TaskResult<Step>, CanoError> {
        tokio::time::sleep(self.latency).await;
        let at = elapsed_ms(res)?;
        match self.answer {
            Ok(price) => {
                println!("  {at:>4} ms  {}: quote {price:.2}", self.name);
                store(res)?.put(self.name, price)?;
                // A branch's next state is handed to the join, not followed.
                Ok(TaskResult::Single(Step::Pick))
            }
            Err(reason) => {
                println!("  {at:>4} ms  {}: failed ({reason})", self.name);
                Err(CanoError::task_execution(reason))
            }
        }
    }

    /// One attempt: the default would retry the failing mirror 3 times.
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

/// The join state: reports every branch's outcome and keeps the best quote.
struct Pick;

impl JoinTask<Step> for Pick {
    async fn join(
        &self,
        res: &Resources,
        results: &SplitResult<Step>,
    ) -> Result<TaskResult<Step>, CanoError> {
        let at = elapsed_ms(res)?;
        let quotes = store(res)?;
        let names = |indices: &mut dyn Iterator<Item = usize>| {
            indices.map(|i| MIRRORS[i].name).collect::<Vec<_>>()
        };
        println!(
            "  {at:>4} ms  join: {} succeeded {:?}, {} failed {:?}, {} cancelled {:?}",
            results.successes.len(),
            names(&mut results.successes.iter().map(|(i, _)| *i)),
            results.errors.len(),
            names(&mut results.errors.iter().map(|(i, _)| *i)),
            results.cancelled.len(),
            names(&mut results.cancelled.iter().copied()),
        );
        let mut best: Option<(&str, f64)> = None;
        for (i, _) in &results.successes {
            let name = MIRRORS[*i].name;
            let price: f64 = quotes.get(name)?;
            if best.is_none_or(|(_, lowest)| price < lowest) {
                best = Some((name, price));
            }
        }
        Ok(TaskResult::Single(match best {
            Some((name, price)) => {
                println!("            best quote: {price:.2} from {name}");
                Step::Done
            }
            None => {
                println!("            no quote");
                Step::NoQuote
            }
        }))
    }
}

fn quote_workflow(join: JoinConfig<Step>) -> Result<Workflow<Step>, CanoError> {
    let resources = Resources::new().insert("quotes", MemoryStore::new())?;
    Ok(Workflow::new(resources)
        .register(Step::Open, Open)
        .register_split(Step::Quote, &MIRRORS, join.with_spawned_branches())
        .register_join(Step::Pick, Pick)
        .add_exit_states([Step::Done, Step::NoQuote]))
}

#[tokio::main]
async fn main() -> Result<(), CanoError> {
    println!("mirrors:");
    for m in &MIRRORS {
        match m.answer {
            Ok(price) => println!("  {}: {price:.2} after {:?}", m.name, m.latency),
            Err(reason) => println!("  {}: fails ({reason}) after {:?}", m.name, m.latency),
        }
    }
    let strategies = [
        (JoinStrategy::All, "every branch must succeed"),
        (JoinStrategy::Any, "the first success is enough"),
        (JoinStrategy::Quorum(2), "two successes are enough"),
        (JoinStrategy::Percentage(0.75), "3 of 4 (75 %) must succeed"),
        (
            JoinStrategy::PartialTimeout,
            "whatever completed within 500 ms",
        ),
    ];
    for (strategy, meaning) in strategies {
        println!("\n{strategy:?}: {meaning}");
        let mut join = JoinConfig::new(strategy, Step::Pick);
        if strategy == JoinStrategy::PartialTimeout {
            join = join.with_timeout(Duration::from_millis(500));
        }
        let workflow = quote_workflow(join)?;
        let started = Instant::now();
        let outcome = workflow.orchestrate(Step::Open).await;
        let ms = started.elapsed().as_millis();
        match outcome {
            Ok(end) => println!("  => ended in {end:?} after {ms} ms"),
            Err(e) => println!("  => failed after {ms} ms: {e}"),
        }
    }
    Ok(())
}
