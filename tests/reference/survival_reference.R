# Reference values for oncopipe's survival methods, computed with R.
#
# Made with: R 4.2.2 Patched (2022-11-10 r83330), survival 3.5-3, relsurv 2.2-9 (Debian bookworm packages
# r-base-core, r-cran-survival, r-cran-relsurv). Regenerate from this folder:
#     Rscript survival_reference.R
# It writes, next to itself:
#   colrec.csv, slopop.csv            relsurv's colrec data and its slopop rate table (long form)
#   lung.csv, veteran.csv, ovarian.csv, generated.csv   the data every other reference is computed on
#   cox_design_<data>.csv             time, status and R's model matrix of each Cox reference model
#   net_survival_reference.json       relsurv::rs.surv(method = "pohar-perme") on colrec, overall and by sex
#   survival_reference.json           survfit, survdiff, coxph (Efron, Breslow), its global tests, concordance
#                                     and cox.zph
# The Python tests read these committed files; they never call R.
# Numbers are written with 17 significant digits. JSON is written by hand (jsonlite is not packaged here).
suppressPackageStartupMessages({library(survival); library(relsurv)})

num <- function(x) {
  x <- as.numeric(x)
  s <- ifelse(is.finite(x), sprintf("%.17g", x), "null")
  paste0("[", paste(s, collapse = ", "), "]")
}
to_json <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
  if (is.list(x)) {
    parts <- vapply(names(x), function(k) paste0(inner, '"', k, '": ', to_json(x[[k]], inner)), "")
    return(paste0("{\n", paste(parts, collapse = ",\n"), "\n", indent, "}"))
  }
  if (is.character(x)) return(paste0("[", paste0('"', x, '"', collapse = ", "), "]"))
  num(x)
}
write_json <- function(x, file) writeLines(to_json(x), file)
write_data <- function(frame, file) write.csv(frame, file, row.names = FALSE, na = "")

# ---------------------------------------------------------------- net survival (relsurv)
data(colrec, package = "relsurv")
colrec_out <- data.frame(sex = ifelse(colrec$sex == 1, "male", "female"), age_days = as.numeric(colrec$age),
                         diag_days = as.numeric(colrec$diag), time = colrec$time, stat = colrec$stat)
write_data(colrec_out, "colrec.csv")
# diag_days counts days from 1960-01-01 (the origin of the 'date' class relsurv uses).

at <- attributes(slopop)
cuts <- at$cutpoints
grid <- expand.grid(age = seq_along(cuts[[1]]), year = seq_along(cuts[[2]]), sex = seq_along(at$dimnames$sex))
slopop_out <- data.frame(sex = at$dimnames$sex[grid$sex], age_from_days = cuts[[1]][grid$age],
                         date_from = format(as.Date(as.numeric(cuts[[2]])[grid$year], origin = "1960-01-01")),
                         hazard_per_day = as.numeric(slopop[cbind(grid$age, grid$year, grid$sex)]))
write.csv(transform(slopop_out, hazard_per_day = sprintf("%.17g", hazard_per_day)), "slopop.csv",
          row.names = FALSE, quote = FALSE)

years <- c(1, 3, 5)
# The estimate at t years is the curve's value at the last time <= floor(t * 365.25) days (survfit's step
# function); the number at risk is that at the first time >= t * 365.25 days (as summary.survfit(times = )
# reports it; the same count as the Kaplan-Meier tables at t years).
pick <- function(time, value, t) sapply(t, function(u) value[max(which(time <= u))])
ns_summary <- function(fit) {
  strata <- if (is.null(fit$strata)) c(all = length(fit$time)) else fit$strata
  ends <- cumsum(strata)
  out <- list()
  for (k in seq_along(strata)) {
    idx <- (ends[k] - strata[k] + 1):ends[k]
    tt <- fit$time[idx]
    marks <- floor(years * 365.25)
    out[[sub(".*=", "", names(strata)[k])]] <- list(
      years = years, day = marks,
      n_risk = sapply(years * 365.25, function(m) fit$n.risk[idx][min(which(tt >= m))]),
      net_survival = pick(tt, fit$surv[idx], marks), std_err = pick(tt, fit$std.err[idx], marks),
      lower = pick(tt, fit$lower[idx], marks), upper = pick(tt, fit$upper[idx], marks))
  }
  out
}
ns <- list()
for (ct in c("log", "log-log")) {
  key <- sub("-", "_", ct)
  ns[[paste0("overall_", key)]] <- ns_summary(rs.surv(Surv(time, stat) ~ 1, rmap = list(age = age, sex = sex, year = diag), data = colrec,
                                                      ratetable = slopop, method = "pohar-perme", conf.type = ct))
  ns[[paste0("sex_", key)]] <- ns_summary(rs.surv(Surv(time, stat) ~ sex,
                                                  rmap = list(age = age, sex = sex, year = diag), data = colrec,
                                                  ratetable = slopop, method = "pohar-perme", conf.type = ct))
}
# sex strata are "sex=1" / "sex=2": name them as in colrec.csv
for (k in grep("^sex_", names(ns))) names(ns[[k]]) <- c("male", "female")[as.integer(names(ns[[k]]))]
write_json(ns, "net_survival_reference.json")

# ---------------------------------------------------------------- survival (KM, log-rank, Cox)
lung2 <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")])
lung2$status <- lung2$status - 1
lung2$sex <- ifelse(lung2$sex == 1, "male", "female")
write_data(lung2, "lung.csv")
vet <- veteran
vet$celltype <- as.character(vet$celltype)
write_data(vet, "veteran.csv")
write_data(ovarian, "ovarian.csv")

# Generated: integer times 1..15 with heavy ties (deaths and censorings at the same times), three groups, a
# group "all_die" whose members all die (the last death ends its curve at 0), a covariate.
set.seed(17)
n <- 120
gen <- data.frame(group = rep(c("a", "b", "all_die"), each = n / 3))
gen$x <- round(rnorm(n), 2)
gen$time <- pmin(15, 1 + rpois(n, ifelse(gen$group == "b", 6, 4) * exp(-0.3 * gen$x)))
gen$status <- ifelse(gen$group == "all_die", 1, rbinom(n, 1, 0.7))
write_data(gen, "generated.csv")

km_block <- function(time, status, conf.type) {
  f <- survfit(Surv(time, status) ~ 1, conf.type = conf.type)
  list(time = f$time, n_risk = f$n.risk, n_event = f$n.event, surv = f$surv, std_err = f$std.err,
       lower = f$lower, upper = f$upper)
}
km_at <- function(time, status, times) {
  s <- summary(survfit(Surv(time, status) ~ 1, conf.type = "log-log"), times = times, extend = TRUE)
  list(times = times, surv = s$surv, n_risk = s$n.risk)
}
logrank <- function(formula, data) {
  d <- survdiff(formula, data = data)
  list(chisq = d$chisq, observed = as.numeric(d$obs), expected = as.numeric(d$exp))
}
cox_block <- function(x, time, status, ties) {
  fit <- coxph(Surv(time, status) ~ x, ties = ties)
  s <- summary(fit)
  z <- cox.zph(fit, transform = "km", terms = FALSE)
  cc <- concordance(fit)
  # summary(fit)$waldtest etc. are rounded for printing: the unrounded statistics are in the fit.
  df <- length(coef(fit))
  global <- function(chisq) c(chisq, df, pchisq(chisq, df, lower.tail = FALSE))
  list(coef = as.numeric(coef(fit)), se = sqrt(diag(vcov(fit))), loglik = fit$loglik,
       lr = global(2 * diff(fit$loglik)), wald = global(fit$wald.test), score = global(fit$score),
       concordance = as.numeric(s$concordance), concordance_var = cc$var,
       concordance_count = as.numeric(cc$count),
       zph_chisq = as.numeric(z$table[, "chisq"]), zph_df = as.numeric(z$table[, "df"]))
}
design <- function(formula, data) model.matrix(formula, data)[, -1, drop = FALSE]

ref <- list()
ref$km <- list(
  lung_log_log = km_block(lung2$time, lung2$status, "log-log"),
  lung_log = km_block(lung2$time, lung2$status, "log"),
  veteran_log_log = km_block(vet$time, vet$status, "log-log"),
  generated_log_log = km_block(gen$time, gen$status, "log-log"),
  all_die_log_log = km_block(gen$time[gen$group == "all_die"], gen$status[gen$group == "all_die"], "log-log"))
ref$km_at <- list(
  all_die = km_at(gen$time[gen$group == "all_die"], gen$status[gen$group == "all_die"], c(2, 5, 10, 20)),
  lung = km_at(lung2$time, lung2$status, c(365.25, 730.5, 1000)))
ref$logrank <- list(
  lung_sex = logrank(Surv(time, status) ~ sex, lung2),
  veteran_celltype = logrank(Surv(time, status) ~ celltype, vet),
  ovarian_rx = logrank(Surv(futime, fustat) ~ rx, ovarian),
  generated_group = logrank(Surv(time, status) ~ group, gen))
designs <- list(
  lung = list(x = design(~ age + sex + ph.ecog, lung2), time = lung2$time, status = lung2$status),
  veteran = list(x = design(~ trt + celltype + karno + diagtime + age + prior, vet), time = vet$time,
                 status = vet$status),
  ovarian = list(x = design(~ age + ecog.ps + rx, ovarian), time = ovarian$futime, status = ovarian$fustat),
  generated = list(x = design(~ x + group, gen), time = gen$time, status = gen$status))
ref$cox <- list()
for (name in names(designs)) {
  d <- designs[[name]]
  write_data(data.frame(time = d$time, status = d$status, d$x, check.names = FALSE),
             paste0("cox_design_", name, ".csv"))
  for (ties in c("efron", "breslow"))
    ref$cox[[paste0(name, "_", ties)]] <- c(list(columns = colnames(d$x)),
                                            cox_block(d$x, d$time, d$status, ties))
}
write_json(ref, "survival_reference.json")
