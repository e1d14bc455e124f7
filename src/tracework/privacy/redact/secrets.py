"""Credential detectors: provider API keys and tokens, private key blocks,
JWTs, URLs carrying credentials and the generic ``name = high-entropy value``
rule.

Every pattern is written for Python's backtracking ``re`` so that it runs in
linear time: quantifiers are bounded (``{m,n}``, never ``+`` or ``*`` over a
class that the next item can also match), no quantified group contains
another quantifier over overlapping characters, and each pattern starts with a
literal or a narrow class. ``MAX_TOKEN`` caps every token length; see
docs/privacy-redaction.md for the resulting bound on work per kilobyte.

Formats come from each provider's documentation of its key format (prefix,
alphabet, length); where a provider publishes no fixed prefix (Datadog,
Cloudflare, Fastly, Heroku legacy keys, AWS secret keys) the rule needs the
provider's name next to the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TOKEN = 512  # longest token any provider rule matches
MAX_PEM = 16384  # longest private key block searched for its END line
MAX_TOKEN_SCAN = 8192  # a run of token characters longer than this is redacted whole, not scanned
CONTEXT_BEFORE = 64  # characters before a token that context rules may need (``aws_secret = ``)

# Candidate tokens: runs of characters secrets are made of. Provider rules and
# JWTs only run inside these (plus CONTEXT_BEFORE), which keeps prose cheap.
# 16 is below the shortest provider token we match (Square's sq0atp- + 22).
LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-.+/=%~:$@\"'{}]{16,}")


@dataclass(frozen=True, slots=True)
class TokenRule:
    """One provider token format. ``group`` is the regex group holding the secret."""

    provider: str
    placeholder: str
    pattern: str
    group: int = 0


# Boundaries: a token must not be glued to more token characters on either
# side, otherwise ``xghp_...`` or a longer base64 run would half-match.
_L = r"(?<![A-Za-z0-9_\-])"
_R = r"(?![A-Za-z0-9_\-])"
_ASSIGN = r"[A-Za-z0-9_\-]{0,24}[\"']?\s{0,3}(?::=|=>|=|:)\s{0,3}[\"']?"

TOKEN_RULES: tuple[TokenRule, ...] = (
    TokenRule("aws-access-key-id", "AWS_KEY", _L + r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z2-7]{16}" + _R),
    TokenRule("aws-secret-access-key", "AWS_SECRET", r"(?i:aws)" + r"[A-Za-z0-9_\-]{0,24}(?i:secret|sec|key)" + _ASSIGN + r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])", 1),
    TokenRule("google-api-key", "GOOGLE_API_KEY", _L + r"AIza[0-9A-Za-z_\-]{35}" + _R),
    TokenRule("google-oauth-client-secret", "GOOGLE_OAUTH_SECRET", _L + r"GOCSPX-[A-Za-z0-9_\-]{28}" + _R),
    TokenRule("google-oauth-access-token", "GOOGLE_OAUTH_TOKEN", _L + r"ya29\.[0-9A-Za-z_\-]{20,500}" + _R),
    TokenRule("gcp-service-account-key-id", "GCP_SERVICE_ACCOUNT", r"\"private_key_id\"\s{0,3}:\s{0,3}\"([a-f0-9]{40})\"", 1),
    TokenRule("azure-storage-account-key", "AZURE_STORAGE_KEY", r"(?i:AccountKey)=([A-Za-z0-9+/]{86}==)", 1),
    TokenRule("azure-sas-signature", "AZURE_SAS", r"[?&]sig=([A-Za-z0-9%+/=]{40,120})", 1),
    TokenRule("azure-ad-client-secret", "AZURE_CLIENT_SECRET", _L + r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}" + _R),
    TokenRule("github-token", "GITHUB_TOKEN", _L + r"gh[pousr]_[A-Za-z0-9]{36,251}" + _R),
    TokenRule("github-fine-grained-pat", "GITHUB_TOKEN", _L + r"github_pat_[A-Za-z0-9_]{82,251}" + _R),
    TokenRule("gitlab-token", "GITLAB_TOKEN", _L + r"(?:glpat|glptt|gldt|glrt|glcbt|glft|glimt|glagent|gloas)-[A-Za-z0-9_\-]{20,64}" + _R),
    TokenRule("slack-token", "SLACK_TOKEN", _L + r"xox[baprse]-[A-Za-z0-9\-]{10,250}" + _R),
    TokenRule("slack-webhook", "SLACK_WEBHOOK", r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,120}"),
    TokenRule("stripe-key", "STRIPE_KEY", _L + r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,247}" + _R),
    TokenRule("stripe-webhook-secret", "STRIPE_KEY", _L + r"whsec_[A-Za-z0-9]{32,64}" + _R),
    TokenRule("anthropic-key", "ANTHROPIC_KEY", _L + r"sk-ant-(?:api|admin|sid)\d\d-[A-Za-z0-9_\-]{80,120}" + _R),
    TokenRule("openai-key", "OPENAI_KEY", _L + r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{40,250}" + _R),
    TokenRule("openai-legacy-key", "OPENAI_KEY", _L + r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}" + _R),
    TokenRule("openai-generic-key", "OPENAI_KEY", _L + r"sk-[A-Za-z0-9]{48}" + _R),
    TokenRule("twilio-api-key", "TWILIO_KEY", _L + r"(?:SK|AC)[0-9a-f]{32}" + _R),
    TokenRule("sendgrid-key", "SENDGRID_KEY", _L + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _R),
    TokenRule("npm-token", "NPM_TOKEN", _L + r"npm_[A-Za-z0-9]{36}" + _R),
    TokenRule("pypi-token", "PYPI_TOKEN", _L + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,400}" + _R),
    TokenRule("huggingface-token", "HUGGINGFACE_TOKEN", _L + r"(?:hf|api_org)_[A-Za-z0-9]{34}" + _R),
    TokenRule("datadog-key", "DATADOG_KEY", r"(?i:datadog|dd)[_\-]?(?i:api|app|application)?[_\-]?(?i:key)" + _ASSIGN + r"([a-f0-9]{40}|[a-f0-9]{32})(?![A-Za-z0-9])", 1),
    TokenRule("mailgun-key", "MAILGUN_KEY", _L + r"key-[0-9a-z]{32}" + _R),
    TokenRule("mailchimp-key", "MAILCHIMP_KEY", _L + r"[0-9a-f]{32}-us\d{1,2}" + _R),
    TokenRule("shopify-token", "SHOPIFY_TOKEN", _L + r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}" + _R),
    TokenRule("digitalocean-token", "DIGITALOCEAN_TOKEN", _L + r"do[opr]_v1_[a-f0-9]{64}" + _R),
    TokenRule("heroku-key", "HEROKU_KEY", _L + r"HRKU-[A-Za-z0-9_\-]{40,70}" + _R),
    TokenRule("heroku-legacy-key", "HEROKU_KEY", r"(?i:heroku)" + _ASSIGN + r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})", 1),
    TokenRule("discord-bot-token", "DISCORD_TOKEN", _L + r"[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}" + _R),
    TokenRule("discord-webhook", "DISCORD_TOKEN", r"discord(?:app)?\.com/api/webhooks/\d{5,20}/[A-Za-z0-9_\-]{60,68}"),
    TokenRule("telegram-bot-token", "TELEGRAM_TOKEN", r"(?<![0-9])\d{8,10}:AA[A-Za-z0-9_\-]{33}" + _R),
    TokenRule("square-token", "SQUARE_TOKEN", _L + r"(?:sq0atp-[A-Za-z0-9_\-]{22}|sq0csp-[A-Za-z0-9_\-]{43}|EAAA[A-Za-z0-9_\-]{60})" + _R),
    TokenRule("braintree-token", "BRAINTREE_TOKEN", r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}"),
    TokenRule("atlassian-token", "ATLASSIAN_TOKEN", _L + r"ATATT3[A-Za-z0-9_\-=]{150,300}" + _R),
    TokenRule("linear-key", "LINEAR_KEY", _L + r"lin_(?:api|oauth)_[A-Za-z0-9]{40}" + _R),
    TokenRule("notion-token", "NOTION_TOKEN", _L + r"(?:secret_[A-Za-z0-9]{43}|ntn_\d{11}[A-Za-z0-9]{35})" + _R),
    TokenRule("doppler-token", "DOPPLER_TOKEN", _L + r"dp\.(?:pt|st|sa|ct|scim|audit)\.(?:[a-z0-9_\-]{1,20}\.)?[A-Za-z0-9_\-]{40,64}" + _R),
    TokenRule("vault-token", "VAULT_TOKEN", _L + r"hv[sbr]\.[A-Za-z0-9_\-]{24,200}" + _R),
    TokenRule("postman-key", "POSTMAN_KEY", _L + r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}" + _R),
    TokenRule("newrelic-key", "NEWRELIC_KEY", _L + r"(?:NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_\-]{32}|NRJS-[a-f0-9]{19})" + _R),
    TokenRule("sentry-token", "SENTRY_TOKEN", _L + r"(?:sntrys_[A-Za-z0-9+/=_]{50,400}|sntryu_[a-f0-9]{64})" + _R),
    TokenRule("sentry-dsn", "SENTRY_TOKEN", r"https://([0-9a-f]{32})@[A-Za-z0-9.\-]{1,100}\.sentry\.io", 1),
    TokenRule("databricks-token", "DATABRICKS_TOKEN", _L + r"dapi[a-f0-9]{32}(?:-\d)?" + _R),
    TokenRule("cloudflare-key", "CLOUDFLARE_KEY", r"(?i:cloudflare|cf)[_\-]?(?i:api)?[_\-]?(?i:key|token)" + _ASSIGN + r"([A-Za-z0-9_\-]{37,40})" + _R, 1),
    TokenRule("fastly-key", "FASTLY_KEY", r"(?i:fastly)[A-Za-z0-9_\-]{0,24}" + _ASSIGN + r"([A-Za-z0-9_\-]{32})" + _R, 1),
    TokenRule("grafana-token", "GRAFANA_TOKEN", _L + r"(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})" + _R),
    TokenRule("supabase-token", "SUPABASE_TOKEN", _L + r"sbp_[a-f0-9]{40}" + _R),
    TokenRule("age-secret-key", "AGE_KEY", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    TokenRule("pulumi-token", "PULUMI_TOKEN", _L + r"pul-[a-f0-9]{40}" + _R),
    TokenRule("terraform-cloud-token", "TERRAFORM_TOKEN", _L + r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,70}" + _R),
    TokenRule("replicate-token", "REPLICATE_TOKEN", _L + r"r8_[A-Za-z0-9]{37}" + _R),
    TokenRule("groq-key", "GROQ_KEY", _L + r"gsk_[A-Za-z0-9]{52}" + _R),
    TokenRule("xai-key", "XAI_KEY", _L + r"xai-[A-Za-z0-9]{80}" + _R),
    TokenRule("figma-token", "FIGMA_TOKEN", _L + r"figd_[A-Za-z0-9_\-]{40}" + _R),
    TokenRule("airtable-pat", "AIRTABLE_TOKEN", _L + r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}" + _R),
    TokenRule("mapbox-token", "MAPBOX_TOKEN", _L + r"(?:sk|tk)\.eyJ[A-Za-z0-9_\-]{20,500}\.[A-Za-z0-9_\-]{20,100}" + _R),
    TokenRule("dropbox-token", "DROPBOX_TOKEN", _L + r"sl\.[A-Za-z0-9_\-]{130,300}" + _R),
    TokenRule("twitter-bearer", "TWITTER_TOKEN", _L + r"A{20}[A-Za-z0-9%]{30,120}" + _R),
)

# Rules whose matches start with a fixed literal can be found by one combined
# scan; the others (assignment-context rules) each run over the text.
JWT_PATTERN = re.compile(
    _L + r"eyJ[A-Za-z0-9_\-]{8,4096}\.eyJ[A-Za-z0-9_\-]{2,8192}\.[A-Za-z0-9_\-]{0,2048}" + _R
)

# scheme://user:password@host  — the userinfo is the secret, the host stays.
URL_CREDENTIALS_PATTERN = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]{1,20}://([^\s:/?#@\"'<>]{1,128}:[^\s/?#@\"'<>]{1,256})@"
)

PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,40})PRIVATE KEY( BLOCK)?-----")
PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----")

# The generic rule: a value assigned to a name that says it is secret.
# Anchored on the keyword, so prose costs one failed literal check per word.
_PASSWORD_NAMES = r"pass(?:word|wd|phrase)?|pwd"
_SECRET_NAMES = (
    r"secret|token|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?key|private[_\-]?key|"
    r"client[_\-]?secret|credentials?|key"
)
GENERIC_ASSIGNMENT = re.compile(
    r"(?i:(" + _PASSWORD_NAMES + r")|(" + _SECRET_NAMES + r"))"
    r"[A-Za-z0-9_\-]{0,20}[\"']?\s{0,3}(?::=|=>|=|:)\s{0,3}[\"']?([^\s\"'`;,<>]{1,256})"
)
# Connection strings (ADO.NET, JDBC, ODBC): Password=...; / pwd=...;

# Literals at least one of which every match of the rule contains. A window
# without any of a rule's hints cannot match it, so the rule is not run there:
# this keeps the cost per candidate token near one ``in`` test per rule.
# Lower-case hints are compared against the lower-cased window.
RULE_HINTS: dict[str, tuple[str, ...]] = {
    "aws-access-key-id": ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA", "ASCA"),
    "aws-secret-access-key": ("aws",),
    "google-api-key": ("AIza",),
    "google-oauth-client-secret": ("GOCSPX-",),
    "google-oauth-access-token": ("ya29.",),
    "gcp-service-account-key-id": ("private_key_id",),
    "azure-storage-account-key": ("accountkey=",),
    "azure-sas-signature": ("sig=",),
    "azure-ad-client-secret": ("Q~",),
    "github-token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    "github-fine-grained-pat": ("github_pat_",),
    "gitlab-token": ("glpat-", "glptt-", "gldt-", "glrt-", "glcbt-", "glft-", "glimt-", "glagent-", "gloas-"),
    "slack-token": ("xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-", "xoxe-"),
    "slack-webhook": ("hooks.slack.com",),
    "stripe-key": ("_live_", "_test_"),
    "stripe-webhook-secret": ("whsec_",),
    "anthropic-key": ("sk-ant-",),
    "openai-key": ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-"),
    "openai-legacy-key": ("T3BlbkFJ",),
    "openai-generic-key": ("sk-",),
    "twilio-api-key": ("SK", "AC"),
    "sendgrid-key": ("SG.",),
    "npm-token": ("npm_",),
    "pypi-token": ("pypi-AgEIcHlwaS5vcmc",),
    "huggingface-token": ("hf_", "api_org_"),
    "datadog-key": ("datadog", "dd"),
    "mailgun-key": ("key-",),
    "mailchimp-key": ("-us",),
    "shopify-token": ("shpat_", "shpca_", "shppa_", "shpss_"),
    "digitalocean-token": ("dop_v1_", "doo_v1_", "dor_v1_"),
    "heroku-key": ("HRKU-",),
    "heroku-legacy-key": ("heroku",),
    "discord-bot-token": ("M", "N", "O"),
    "discord-webhook": ("/api/webhooks/",),
    "telegram-bot-token": (":AA",),
    "square-token": ("sq0atp-", "sq0csp-", "EAAA"),
    "braintree-token": ("access_token$",),
    "atlassian-token": ("ATATT3",),
    "linear-key": ("lin_api_", "lin_oauth_"),
    "notion-token": ("secret_", "ntn_"),
    "doppler-token": ("dp.",),
    "vault-token": ("hvs.", "hvb.", "hvr."),
    "postman-key": ("PMAK-",),
    "newrelic-key": ("NRAK-", "NRII-", "NRJS-"),
    "sentry-token": ("sntrys_", "sntryu_"),
    "sentry-dsn": ("sentry.io",),
    "databricks-token": ("dapi",),
    "cloudflare-key": ("cloudflare", "cf"),
    "fastly-key": ("fastly",),
    "grafana-token": ("glc_", "glsa_"),
    "supabase-token": ("sbp_",),
    "age-secret-key": ("AGE-SECRET-KEY-1",),
    "pulumi-token": ("pul-",),
    "terraform-cloud-token": (".atlasv1.",),
    "replicate-token": ("r8_",),
    "groq-key": ("gsk_",),
    "xai-key": ("xai-",),
    "figma-token": ("figd_",),
    "airtable-pat": ("pat",),
    "mapbox-token": ("sk.eyJ", "tk.eyJ"),
    "dropbox-token": ("sl.",),
    "twitter-bearer": ("AAAAAAAAAAAAAAAAAAAA",),
}
# Hints written in lower case are matched case-insensitively (the rule's
# keyword part is case-insensitive).
LOWER_HINT_RULES = frozenset({
    "aws-secret-access-key", "azure-storage-account-key", "datadog-key", "heroku-legacy-key",
    "cloudflare-key", "fastly-key",
})
