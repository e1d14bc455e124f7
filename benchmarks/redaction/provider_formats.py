"""Provider token formats as each provider documents them, and a generator
of random tokens in those formats.

This table is written from the providers' documentation (prefix, alphabet,
length), independently of the detector regexes in
``tracework.privacy.redact.secrets``, so that the benchmark measures whether
the detectors recognise the documented formats rather than themselves.
Templates: literal text, and ``{alphabet:length}`` for random characters.

Context formats (no fixed prefix) include the name the detector needs, as a
person would type it in a config file or shell.
"""

from __future__ import annotations

import random
import re

ALPHABETS = {
    "AZ": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "az": "abcdefghijklmnopqrstuvwxyz",
    "09": "0123456789",
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "b32": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    "alnum": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "lalnum": "abcdefghijklmnopqrstuvwxyz0123456789",
    "ualnum": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "url": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
    "b64": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "bech32": "qpzry9x8gf2tvdw0s3jn54khce6mua7l".upper(),
    "azure": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.",
}

# (provider, placeholder the detector should give, template, documentation note)
FORMATS: list[tuple[str, str, str]] = [
    ("AWS access key id", "AWS_KEY", "AKIA{b32:16}"),
    ("AWS temporary access key id", "AWS_KEY", "ASIA{b32:16}"),
    ("AWS secret access key", "AWS_SECRET", "aws_secret_access_key = {b64:40}"),
    ("Google API key", "GOOGLE_API_KEY", "AIza{url:35}"),
    ("Google OAuth client secret", "GOOGLE_OAUTH_SECRET", "GOCSPX-{url:28}"),
    ("Google OAuth access token", "GOOGLE_OAUTH_TOKEN", "ya29.{url:120}"),
    ("GCP service account key", "GCP_SERVICE_ACCOUNT", '"private_key_id": "{hex:40}"'),
    ("Azure storage account key", "AZURE_STORAGE_KEY", "AccountName=acme;AccountKey={b64:86}=="),
    ("Azure SAS token", "AZURE_SAS", "?sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2026-01-01&sig={alnum:43}%3D"),
    ("Azure AD client secret", "AZURE_CLIENT_SECRET", "{alnum:3}8Q~{azure:31}"),
    ("GitHub personal access token", "GITHUB_TOKEN", "ghp_{alnum:36}"),
    ("GitHub OAuth token", "GITHUB_TOKEN", "gho_{alnum:36}"),
    ("GitHub user-to-server token", "GITHUB_TOKEN", "ghu_{alnum:36}"),
    ("GitHub server-to-server token", "GITHUB_TOKEN", "ghs_{alnum:36}"),
    ("GitHub refresh token", "GITHUB_TOKEN", "ghr_{alnum:36}"),
    ("GitHub fine-grained PAT", "GITHUB_TOKEN", "github_pat_{alnum:22}_{alnum:59}"),
    ("GitLab personal access token", "GITLAB_TOKEN", "glpat-{url:20}"),
    ("Slack bot token", "SLACK_TOKEN", "xoxb-{09:12}-{09:13}-{alnum:24}"),
    ("Slack user token", "SLACK_TOKEN", "xoxp-{09:12}-{09:12}-{09:13}-{hex:32}"),
    ("Slack webhook", "SLACK_WEBHOOK", "https://hooks.slack.com/services/T{ualnum:8}/B{ualnum:8}/{alnum:24}"),
    ("Stripe secret key", "STRIPE_KEY", "sk_live_{alnum:99}"),
    ("Stripe restricted key", "STRIPE_KEY", "rk_live_{alnum:99}"),
    ("Stripe publishable key", "STRIPE_KEY", "pk_live_{alnum:99}"),
    ("OpenAI project key", "OPENAI_KEY", "sk-proj-{url:156}"),
    ("OpenAI legacy key", "OPENAI_KEY", "sk-{alnum:20}T3BlbkFJ{alnum:20}"),
    ("Anthropic API key", "ANTHROPIC_KEY", "sk-ant-api03-{url:93}AA"),
    ("Twilio API key SID", "TWILIO_KEY", "SK{hex:32}"),
    ("Twilio account SID", "TWILIO_KEY", "AC{hex:32}"),
    ("SendGrid API key", "SENDGRID_KEY", "SG.{url:22}.{url:43}"),
    ("npm access token", "NPM_TOKEN", "npm_{alnum:36}"),
    ("PyPI API token", "PYPI_TOKEN", "pypi-AgEIcHlwaS5vcmc{url:70}"),
    ("Hugging Face token", "HUGGINGFACE_TOKEN", "hf_{alnum:34}"),
    ("Datadog API key", "DATADOG_KEY", "DD_API_KEY={hex:32}"),
    ("Datadog application key", "DATADOG_KEY", "DD_APP_KEY={hex:40}"),
    ("Mailgun API key", "MAILGUN_KEY", "key-{lalnum:32}"),
    ("Mailchimp API key", "MAILCHIMP_KEY", "{hex:32}-us{09:2}"),
    ("Shopify access token", "SHOPIFY_TOKEN", "shpat_{hex:32}"),
    ("DigitalOcean PAT", "DIGITALOCEAN_TOKEN", "dop_v1_{hex:64}"),
    ("Heroku API key", "HEROKU_KEY", "HRKU-{url:60}"),
    ("Heroku legacy API key", "HEROKU_KEY", "HEROKU_API_KEY={hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}"),
    ("Discord bot token", "DISCORD_TOKEN", "M{url:23}.{url:6}.{url:27}"),
    ("Discord webhook", "DISCORD_TOKEN", "https://discord.com/api/webhooks/{09:18}/{url:68}"),
    ("Telegram bot token", "TELEGRAM_TOKEN", "{09:10}:AA{url:33}"),
    ("Square access token", "SQUARE_TOKEN", "EAAA{url:60}"),
    ("Square OAuth secret", "SQUARE_TOKEN", "sq0csp-{url:43}"),
    ("PayPal Braintree access token", "BRAINTREE_TOKEN", "access_token$production${lalnum:16}${hex:32}"),
    ("Atlassian API token", "ATLASSIAN_TOKEN", "ATATT3{url:186}"),
    ("Linear API key", "LINEAR_KEY", "lin_api_{alnum:40}"),
    ("Notion integration token", "NOTION_TOKEN", "ntn_{09:11}{alnum:35}"),
    ("Notion legacy token", "NOTION_TOKEN", "secret_{alnum:43}"),
    ("Doppler personal token", "DOPPLER_TOKEN", "dp.pt.{alnum:43}"),
    ("Doppler service token", "DOPPLER_TOKEN", "dp.st.prd.{alnum:40}"),
    ("HashiCorp Vault service token", "VAULT_TOKEN", "hvs.{url:90}"),
    ("Postman API key", "POSTMAN_KEY", "PMAK-{hex:24}-{hex:34}"),
    ("New Relic user key", "NEWRELIC_KEY", "NRAK-{ualnum:27}"),
    ("Sentry org auth token", "SENTRY_TOKEN", "sntrys_{b64:120}"),
    ("Sentry user token", "SENTRY_TOKEN", "sntryu_{hex:64}"),
    ("Databricks PAT", "DATABRICKS_TOKEN", "dapi{hex:32}"),
    ("Cloudflare API token", "CLOUDFLARE_KEY", "CLOUDFLARE_API_TOKEN={url:40}"),
    ("Cloudflare global API key", "CLOUDFLARE_KEY", "CF_API_KEY={hex:37}"),
    ("Fastly API token", "FASTLY_KEY", "FASTLY_API_TOKEN={url:32}"),
    ("Grafana Cloud token", "GRAFANA_TOKEN", "glc_{b64:120}"),
    ("Grafana service account token", "GRAFANA_TOKEN", "glsa_{alnum:32}_{hex:8}"),
    ("Supabase access token", "SUPABASE_TOKEN", "sbp_{hex:40}"),
    ("age secret key", "AGE_KEY", "AGE-SECRET-KEY-1{bech32:58}"),
    ("Pulumi access token", "PULUMI_TOKEN", "pul-{hex:40}"),
    ("Terraform Cloud token", "TERRAFORM_TOKEN", "{alnum:14}.atlasv1.{url:67}"),
    ("Replicate API token", "REPLICATE_TOKEN", "r8_{alnum:37}"),
    ("Groq API key", "GROQ_KEY", "gsk_{alnum:52}"),
    ("xAI API key", "XAI_KEY", "xai-{alnum:80}"),
    ("Figma PAT", "FIGMA_TOKEN", "figd_{url:40}"),
    ("Airtable PAT", "AIRTABLE_TOKEN", "pat{alnum:14}.{hex:64}"),
    ("Mapbox secret token", "MAPBOX_TOKEN", "sk.eyJ1{url:60}.{url:22}"),
    ("Dropbox short-lived token", "DROPBOX_TOKEN", "sl.{url:135}"),
    ("Twitter/X bearer token", "TWITTER_TOKEN", "AAAAAAAAAAAAAAAAAAAAA{alnum:1}{alnum:60}"),
    ("Stripe webhook secret", "STRIPE_KEY", "whsec_{alnum:32}"),
    ("GitLab runner token", "GITLAB_TOKEN", "glrt-{url:20}"),
    ("Vault batch token", "VAULT_TOKEN", "hvb.{url:120}"),
    ("New Relic insert key", "NEWRELIC_KEY", "NRII-{url:32}"),
]

_FIELD = re.compile(r"\{([A-Za-z0-9]+):(\d+)\}")


def generate(template: str, rng: random.Random) -> str:
    """A random token following ``template``."""
    def fill(m: re.Match) -> str:
        alphabet = ALPHABETS[m.group(1)]
        return "".join(rng.choice(alphabet) for _ in range(int(m.group(2))))

    return _FIELD.sub(fill, template)


def samples(per_format: int = 20, seed: int = 7) -> list[tuple[str, str, str]]:
    """(provider, placeholder, token) for ``per_format`` tokens of every format."""
    rng = random.Random(seed)
    return [(name, ph, generate(t, rng)) for name, ph, t in FORMATS for _ in range(per_format)]
