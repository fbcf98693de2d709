//! gdx exchange: the one door through which shared data leaves the lake.
//!
//! Data flow (as the exchange issues land): HTTP and PostgreSQL-wire requests → API-key
//! authentication → casbin authorisation of a typed action (deny by default) → grants and
//! processing level (raw / masked / aggregate / verify) → the lake's SQL session with row
//! filters and column masks rewritten into the plan → response, with every decision written
//! to a hash-chained audit log before it is answered. The smart scenarios (certificate
//! verification, reward disbursement, elderly allowance) are built on the same path.
