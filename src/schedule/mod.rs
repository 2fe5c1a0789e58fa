//! Scheduling: cron expressions evaluated in the configured time zone, next
//! fire, due list and misfire policy. Sans-IO: every function takes `now`.
