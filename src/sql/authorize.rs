//! The authorization point of the statement executor: every front runs statements through
//! [`SqlSession`], so what is checked here is checked for the CLI, the `.slt` suite and Flight
//! SQL alike, plain or prepared. Today it enforces the sandbox (see `crate::sandbox`) on every
//! location a statement names: `CREATE EXTERNAL TABLE … LOCATION` (read), `COPY … TO` and
//! `EXPORT FEATURE SET … TO` (write); and, because the server has one set of session
//! settings for everyone, `SET` and `RESET` are for administrators.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlan, Statement};

use super::exec::SqlSession;
use crate::error::FStoreError;
use crate::principal::Principal;
use crate::sandbox::{self, Access};

impl SqlSession<'_> {
    /// Whether `principal` administers this server: trusted, or an admin in the registry.
    pub fn is_admin(&self, principal: &Principal) -> bool {
        principal.trusted
            || self
                .registry()
                .state()
                .users
                .get(&principal.name)
                .is_some_and(|u| u.admin)
    }

    /// Checks that `principal` may `access` `location` (the sandbox).
    pub fn check_location(
        &self,
        location: &str,
        access: Access,
        principal: &Principal,
    ) -> Result<()> {
        sandbox::check(
            location,
            access,
            self.is_admin(principal),
            self.config(),
            self.warehouse().url(),
        )
    }

    /// Checks what a plan does: every location it writes (`COPY … TO`, anywhere in the
    /// plan, e.g. under `EXPLAIN ANALYZE`), and settings it changes.
    pub fn check_plan(&self, plan: &LogicalPlan, principal: &Principal) -> Result<()> {
        let mut result = Ok(());
        plan.apply(|node| {
            result = match node {
                LogicalPlan::Copy(copy) => {
                    self.check_location(&copy.output_url, Access::Write, principal)
                }
                LogicalPlan::Statement(
                    Statement::SetVariable(_) | Statement::ResetVariable(_),
                ) if !self.is_admin(principal) => Err(FStoreError::permission_denied(
                    "SET and RESET change the settings of every session on this server: only an administrator may run them",
                )
                .into()),
                _ => Ok(()),
            };
            Ok(match result {
                Ok(()) => TreeNodeRecursion::Continue,
                Err(_) => TreeNodeRecursion::Stop,
            })
        })?;
        result
    }
}
