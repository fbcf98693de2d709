//! The elderly allowance without application (高龄津贴, 无感服务).
//!
//! Data flow: the rule ([`policy`]: bands and amounts as effective-dated configuration, what
//! one person is due for one month) → the monthly run ([`run`]): the lake as of the run's
//! date (who is registered in the district, born when, known dead from which record) and
//! what the ledger and the previous system already paid → the payments, recoveries and
//! notices still owed, committed to the ledger (`scenarios.elderly_allowance_ledger`) in one
//! Delta commit that only one run can make → [`publish`]: from the ledger, each outcome once
//! on `gdx.notifications` and each payment once as a fact of `mca.elderly_allowance_payment`.

pub mod policy;
pub mod publish;
pub mod run;

pub use policy::*;
