//! [`RouterTask`]: a state that only decides where to go next.
//!
//! Register one with [`Workflow::register_router`](crate::Workflow::register_router). It is
//! dispatched exactly like a plain state (same path, same cost, observers see its entry and
//! its attempts) but the engine knows it has no side effect worth recording, so a durable run
//! writes no checkpoint row for it. Returning a state the workflow does not know is the same
//! [`CanoError::Workflow`] as for any task. (cano 0.12's docs said a router could fan out
//! with `TaskResult::Split`; that never worked and cannot be written here: parallelism is
//! [`Workflow::register_split`](crate::Workflow::register_split).)
//!
//! ```
//! use cano_core::{CanoError, MemoryStore, Resources, Task, TaskResult, Workflow};
//! use cano_core::shapes::router::RouterTask;
//! use cano_core::testing::Simulation;
//!
//! #[derive(Debug, Clone, PartialEq, Eq, Hash)]
//! enum State { Route, Small, Large, Done }
//!
//! struct BySize;
//! impl RouterTask<State> for BySize {
//!     async fn route(&self, res: &Resources) -> Result<TaskResult<State>, CanoError> {
//!         let size: u32 = res.get::<MemoryStore, _>("store")?.get("size")?;
//!         Ok(TaskResult::Single(if size > 10 { State::Large } else { State::Small }))
//!     }
//! }
//! struct Finish;
//! impl Task<State> for Finish {
//!     async fn run_bare(&self) -> Result<TaskResult<State>, CanoError> { Ok(State::Done.into()) }
//! }
//!
//! let store = MemoryStore::new();
//! store.put("size", 42u32).unwrap();
//! let workflow = Workflow::new(Resources::new().insert("store", store).unwrap())
//!     .register_router(State::Route, BySize)
//!     .register(State::Small, Finish)
//!     .add_exit_states([State::Large, State::Done]);
//! let sim = Simulation::new();
//! assert_eq!(sim.block_on(workflow.orchestrate_on(&sim.clock(), State::Route)), Ok(State::Large));
//! ```

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::future::Future;

use futures::future::BoxFuture;

use crate::error::CanoError;
use crate::resource::{DefaultKey, Resources};
use crate::workflow::retry::TaskConfig;
use crate::workflow::task::{Task, TaskResult};

/// A task that only chooses the next state (by convention side-effect free).
pub trait RouterTask<S, K = DefaultKey>: Send + Sync {
    /// Chooses the next state. An `Err` fails the state like any task error.
    fn route(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send;

    /// Retry and timeout settings. Default: [`TaskConfig::minimal`] (a decision that fails
    /// usually fails again; cano 0.12 retried routers 3 times by default).
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }

    /// The name observers see. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }
}

/// The object-safe form of [`RouterTask`], implemented for every router.
pub trait DynRouterTask<S, K = DefaultKey>: Send + Sync {
    /// [`RouterTask::route`] with its future boxed.
    fn route_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>>;
    /// [`RouterTask::config`].
    fn config_dyn(&self) -> TaskConfig;
    /// [`RouterTask::name`].
    fn name_dyn(&self) -> Cow<'static, str>;
}

impl<S: 'static, K: 'static, T: RouterTask<S, K>> DynRouterTask<S, K> for T {
    fn route_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        Box::pin(self.route(res))
    }
    fn config_dyn(&self) -> TaskConfig {
        self.config()
    }
    fn name_dyn(&self) -> Cow<'static, str> {
        self.name()
    }
}

macro_rules! forward_router {
    ($ty:ty) => {
        impl<S: 'static, K: Sync + 'static> RouterTask<S, K> for $ty {
            fn route(
                &self,
                res: &Resources<K>,
            ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
                async move { (**self).route_dyn(res).await }
            }
            fn config(&self) -> TaskConfig {
                (**self).config_dyn()
            }
            fn name(&self) -> Cow<'static, str> {
                (**self).name_dyn()
            }
        }
    };
}

forward_router!(Box<dyn DynRouterTask<S, K>>);
forward_router!(Arc<dyn DynRouterTask<S, K>>);

/// A router seen as a task, for the engine's one dispatch path.
pub(crate) struct RouterAsTask<T>(pub(crate) T);

impl<S, K, T> Task<S, K> for RouterAsTask<T>
where
    T: RouterTask<S, K>,
{
    fn run(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        self.0.route(res)
    }
    fn config(&self) -> TaskConfig {
        self.0.config()
    }
    fn name(&self) -> Cow<'static, str> {
        self.0.name()
    }
}
