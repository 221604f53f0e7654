"""What the demo workspaces generate: per workspace, how busy it is, its mix of tools and the prompts its people
write. Read by `qolaba.demo.usage`; plain data, no database access."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qolaba.tools import Tool


@dataclass(frozen=True)
class Sample:
    """One kind of generation: its prompt and output, metadata, and (optionally) the model and units it uses."""

    prompt: str
    output: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # None: picked from the profile's model mix for the tool
    units: tuple[int, ...] = (1,)  # picked at random from these


@dataclass(frozen=True)
class UsageProfile:
    events: int  # generations over the whole demo period (before trimming to the credits available)
    mix: dict[str, int]  # tool -> weight
    samples: dict[str, list[Sample]]
    people: dict[str, float] = field(default_factory=dict)  # email -> weight (default by role)
    models: dict[str, dict[str, int]] = field(default_factory=dict)  # tool -> model -> weight (overrides)
    growth: float = 1.6  # activity at the end of the period relative to its start


MODELS: dict[str, dict[str, int]] = {
    Tool.CHAT: {"gpt-4o-mini": 40, "gpt-4o": 25, "claude-sonnet": 25, "gemini-flash": 10},
    Tool.IMAGE: {"flux-schnell": 35, "flux-pro": 25, "sdxl": 15, "dall-e-3": 25},
    Tool.VIDEO: {"runway-gen3": 60, "kling-1.6": 40},
    Tool.SPEECH: {"elevenlabs-v2": 1},
    Tool.MUSIC: {"stable-audio": 60, "suno-v4": 40},
}

IMAGE_UNITS = (1, 1, 1, 1, 2, 4)
VIDEO_UNITS = (5, 5, 10)


def _tts(script: str, voice: str) -> Sample:
    return Sample(script, metadata={"voice": voice, "characters": len(script)}, model="elevenlabs-v2")


def _transcript(file_name: str, minutes: int, transcript: str) -> Sample:
    return Sample(
        f"Transcribe {file_name}",
        transcript,
        {"file": file_name, "duration_min": minutes, "language": "en"},
        model="whisper",
        units=(minutes,),
    )


def _image(prompt: str, aspect_ratio: str, **extra: Any) -> Sample:
    return Sample(prompt, metadata={"aspect_ratio": aspect_ratio, **extra}, units=IMAGE_UNITS)


def _video(prompt: str, aspect_ratio: str, **extra: Any) -> Sample:
    return Sample(prompt, metadata={"aspect_ratio": aspect_ratio, **extra}, units=VIDEO_UNITS)


def _loop(prompt: str, seconds: int, **extra: Any) -> Sample:
    return Sample(
        prompt, metadata={"duration_s": seconds, **extra}, model="stable-audio", units=(max(1, seconds // 30),)
    )


def _song(prompt: str, seconds: int, **extra: Any) -> Sample:
    return Sample(prompt, metadata={"duration_s": seconds, **extra}, model="suno-v4")


NORTHWIND_HQ = UsageProfile(
    events=55,
    mix={Tool.CHAT: 75, Tool.IMAGE: 15, Tool.SPEECH: 5, Tool.MUSIC: 3, Tool.VIDEO: 2},
    samples={
        Tool.CHAT: [
            Sample(
                "Draft a new-business email to the marketing director of Alder & Finch (outdoor apparel). Mention "
                "our spring running campaign, keep it under 120 words.",
                "Subject: Stories that get people outdoors\n\nHi Priya,\n\nThis spring we launched a running campaign "
                "built around one idea: the city is your track. It reached 4.2M people in three weeks with a small "
                "hero film and a lot of useful short-form content.\n\nAlder & Finch has the same opportunity with "
                "the autumn hiking season. Could we show you a 20-minute version of how we'd approach it?\n\nBest,\n"
                "Olivia",
            ),
            Sample(
                "Summarise this week's studio status notes into five bullets for Monday's all-hands.",
                "- Nike spring: hero film in grade, cut-downs due Thursday.\n- Lumen: product shots approved, "
                "voice-over casting shortlisted to three.\n- Lab: model comparison report v2 shared with leads.\n"
                "- New business: Alder & Finch intro call booked for the 14th.\n- Ops: two freelancers start next "
                "week, laptops ordered.",
            ),
            Sample(
                "Write a job ad for a mid-weight motion designer, hybrid in London, 3+ years of After Effects and "
                "Cinema 4D.",
                "Motion Designer (mid-weight) · Hybrid, London\n\nNorthwind Creative makes campaigns for brands "
                "people actually like. We're looking for a motion designer who can take a storyboard to a finished "
                "social cut-down in a day, and who cares about typography as much as timing.\n\nYou have: 3+ years "
                "in After Effects and Cinema 4D, a reel with real client work, and calm under a deadline.",
            ),
            Sample(
                "Turn these workshop notes into a one-page agenda for our team offsite in Margate (two days).",
                "Day 1 — 10:00 Welcome and year in review · 11:00 What clients said (survey results) · 13:00 Lunch "
                "on the seafront · 14:30 Workshop: our AI production playbook · 16:30 Walk to Turner Contemporary\n"
                "Day 2 — 09:30 Service lines for next year · 11:30 Hiring plan · 13:00 Lunch · 14:00 Commitments "
                "and owners · 15:30 Train back to London",
            ),
            Sample(
                "Give me three options for a LinkedIn post announcing that we won the Lumen Skincare launch.",
                "1. We're thrilled to be Lumen Skincare's launch partner. Clean formulas deserve clear stories — "
                "more soon.\n2. New client news: Lumen Skincare. Calm, clinical, beautiful. Our favourite kind of "
                "brief.\n3. Big welcome to the Lumen team! We'll be launching their first serum this season.",
            ),
            Sample(
                "Rewrite the AI paragraph of our client terms so clients understand we never train models on their "
                "assets.",
                "We use AI tools to speed up production. Your briefs, files and outputs are used only to deliver "
                "your work: they are never used to train AI models, and they are kept in a workspace that only your "
                "team and ours can access.",
            ),
            Sample(
                "Compare a fixed-fee campaign with a monthly retainer for a mid-size DTC brand. Pros and cons.",
                "Fixed fee: + clear budget, + defined scope; - change requests cost time, - lumpy revenue.\n"
                "Retainer: + steady revenue, + room to test and learn; - needs monthly reporting to justify, "
                "- scope creep if priorities are not agreed monthly.",
            ),
            Sample(
                "Proofread: 'Northwind Creative are delighted to welcome three new members to it's design team.'",
                "Northwind Creative is delighted to welcome three new members to its design team.",
            ),
        ],
        Tool.IMAGE: [
            _image(
                "Abstract hero graphic for the Northwind website: layered paper shapes in coral and navy, lots of "
                "negative space",
                "16:9",
                style="flat illustration",
            ),
            _image("Offsite invitation card, retro travel poster of a seaside town, coral and teal", "4:5"),
            _image("LinkedIn banner: isometric studio desk with sketches and a laptop, soft morning light", "16:9"),
            _image("Six simple line icons: strategy, design, video, copy, research, analytics", "1:1", style="icon"),
        ],
        Tool.VIDEO: [
            _video("Slow pan across a sunlit design studio, plants and moodboards, shallow depth of field", "16:9"),
        ],
        Tool.SPEECH: [
            _tts(
                "Welcome to Northwind Creative. The studio is open from nine to six. For urgent production issues "
                "outside those hours, press one to reach the producer on call.",
                "Rachel",
            ),
            _transcript(
                "all-hands-recording.m4a",
                32,
                "Olivia: Morning everyone, three things today. First, the spring film is in the grade and looks "
                "great. Second, we're hiring two motion designers...",
            ),
        ],
        Tool.MUSIC: [
            _loop("Warm, upbeat indie-pop bed for the agency showreel, no vocals, 120 bpm", 60, bpm=120),
        ],
    },
    people={"owner@northwind.test": 1.0, "admin@northwind.test": 2.0},
)

NIKE_SPRING = UsageProfile(
    events=115,
    mix={Tool.CHAT: 45, Tool.IMAGE: 33, Tool.VIDEO: 8, Tool.SPEECH: 5, Tool.MUSIC: 9},
    samples={
        Tool.CHAT: [
            Sample(
                "Give me 10 headline options for the spring running launch. Energetic, short, no puns on 'spring'.",
                "1. Own the morning.\n2. The city is your track.\n3. First light, first mile.\n4. Run before the "
                "doubt wakes up.\n5. Every street is a start line.\n6. Lighter. Faster. Earlier.\n7. Made for the "
                "5 a.m. club.\n8. Chase the sunrise.\n9. Your pace. Your city.\n10. Miles before meetings.",
            ),
            Sample(
                "Write three 15-second TikTok script ideas showing runners training at dawn in the city.",
                "1. Alarm at 5:02 → laces → empty streets → sunrise over the river. VO: 'The city is still asleep. "
                "You're not.'\n2. Split screen: commuters on the bus vs. a runner passing them. Text: 'Same route. "
                "Different morning.'\n3. POV run through a market setting up, vendors wave. End card: 'Own the "
                "morning.'",
            ),
            Sample(
                "Summarise the client feedback from Tuesday's review into actions for design, copy and video.",
                "Design: warmer grade on the hero stills; logo lock-up bigger on OOH. Copy: drop 'unleash', shorter "
                "CTAs. Video: cut the hero film to 30 s and 15 s, open on the shoe, not the skyline.",
            ),
            Sample(
                "Draft alt text for the six hero images of the spring lookbook.",
                "1. A runner mid-stride on a wet street at dawn, pastel sky reflected in puddles.\n2. Running shoes "
                "and a lightweight jacket laid out on a mint background.\n3. Two runners stretching on a bridge at "
                "sunrise...",
            ),
            Sample(
                "Create a shot list for the 'First Light' hero film: 12 shots with location, lens and time of day.",
                "1. Alarm clock close-up, bedroom, 50 mm, 05:00.\n2. Laces tied, hallway, 85 mm macro, 05:05.\n"
                "3. Door opens to empty street, 24 mm, 05:10.\n4. Wide of the river path, drone, 05:40 (golden "
                "hour)...",
            ),
            Sample(
                "Rewrite this product description for the Aero spring colourway in under 50 words.",
                "The Aero in Dawn Mint: responsive foam, a breathable knit upper and a colourway made for the first "
                "light of the day. Built for the miles you fit in before everyone else wakes up.",
            ),
            Sample(
                "Suggest a posting calendar for Instagram and TikTok across the four launch weeks.",
                "Week 1: teaser (3 IG stories, 2 TikToks). Week 2: hero film launch + creator stitches. Week 3: "
                "product detail carousels, UGC reposts. Week 4: community run recap and 'see you next morning' "
                "close.",
            ),
            Sample(
                "What accessibility checks should we run on the campaign landing page before handover?",
                "Colour contrast of the mint-on-white CTA (currently 2.9:1, needs 4.5:1), captions on the hero "
                "video, alt text on every lookbook image, keyboard focus on the carousel, and no autoplay with "
                "sound.",
            ),
        ],
        Tool.IMAGE: [
            _image(
                "Runner mid-stride on a wet city street at dawn, low angle, pastel sky reflections, editorial "
                "sports photography",
                "4:5",
                style="photographic",
            ),
            _image("Flat-lay of spring running gear on a mint background, top-down, soft shadows", "1:1"),
            _image(
                "Billboard concept: silhouette of a runner made of cherry-blossom petals, space for type on the left",
                "16:9",
            ),
            _image("Storyboard frame 4: close-up of laces being tied, morning light through a window", "16:9"),
            _image("Instagram story background: abstract motion trails in coral and lime", "9:16"),
            _image("Diverse group of runners stretching in a park at sunrise, candid, warm tones", "3:2"),
        ],
        Tool.VIDEO: [
            _video("Slow-motion close-up of running shoes splashing through a puddle at sunrise", "9:16"),
            _video("Drone shot following a runner across a bridge at dawn, city skyline, cinematic", "16:9"),
            _video("Animate storyboard frame 4: laces tightening, camera slowly pushes in", "16:9", source="image"),
        ],
        Tool.SPEECH: [
            _tts("This spring, the city is your track. Start before the sun. Finish before the doubt.", "Adam"),
            _tts("First light. First mile. First of many.", "Rachel"),
        ],
        Tool.MUSIC: [
            _loop("Driving electronic track, 128 bpm, building intensity, for a 30-second running ad", 30, bpm=128),
            _song(
                "Energetic indie-pop song about running through the city at dawn, female vocals", 90, vocals="female"
            ),
        ],
    },
    people={"member@northwind.test": 3.0, "lead@northwind.test": 2.0, "admin@northwind.test": 1.0},
)

LUMEN_LAUNCH = UsageProfile(
    events=90,
    mix={Tool.CHAT: 50, Tool.IMAGE: 30, Tool.SPEECH: 12, Tool.VIDEO: 3, Tool.MUSIC: 5},
    samples={
        Tool.CHAT: [
            Sample(
                "Write the product page copy for Lumen Dew Serum (hyaluronic acid + niacinamide, for dry and "
                "combination skin). 120 words, calm and clinical.",
                "Lumen Dew Serum\n\nA lightweight serum that draws moisture in and keeps it there. Hyaluronic acid "
                "hydrates on contact; 4% niacinamide supports the skin barrier and evens the look of tone over time. "
                "Made for dry and combination skin, fragrance-free, and gentle enough for morning and evening.\n\n"
                "How to use: two drops on clean skin, then your usual moisturiser.",
            ),
            Sample(
                "Five subject lines for the launch email. Avoid 'miracle', 'anti-ageing' and any medical claims.",
                "1. Meet Lumen Dew\n2. Hydration, made simple\n3. Two drops. All day.\n4. The serum we've been "
                "working on\n5. Light for every skin",
            ),
            Sample(
                "Check this claim list against UK ASA guidance and flag anything risky: 'clinically proven', "
                "'reduces wrinkles by 40%', 'dermatologist approved'.",
                "'Clinically proven' — needs the study to back the exact claim. 'Reduces wrinkles by 40%' — high "
                "risk: a numeric efficacy claim needs robust evidence and the method on pack. 'Dermatologist "
                "approved' — OK only with a documented panel; prefer 'dermatologist tested'.",
            ),
            Sample(
                "Draft a 30-second radio voice-over script for the launch, warm female voice, ending with the URL.",
                "(Soft piano) Some mornings your skin feels tight before you've even had coffee. Meet Lumen Dew: a "
                "lightweight serum that holds moisture all day, so your skin feels like yours again. Two drops, "
                "morning and night. Lumen Dew — light for every skin. Find it at lumen-skin.com.",
            ),
            Sample(
                "Summarise the focus-group transcript: what did people say about the packaging?",
                "Positive: the frosted glass 'looks premium', the sage colour reads as natural. Negative: the "
                "dropper is hard to use with wet hands; two people could not find the ingredients list.",
            ),
            Sample(
                "Write three Instagram captions for the morning-routine carousel, three hashtags each.",
                "1. Step two, every morning. ☀️ #LumenDew #SkincareRoutine #Hydration\n2. Two drops, then get on "
                "with your day. #LumenDew #MorningRoutine #DrySkin\n3. Light texture, lasting hydration. "
                "#LumenSkincare #Serum #SkinBarrier",
            ),
            Sample(
                "Translate the tagline 'Light for every skin' into French, German and Spanish, with notes.",
                "FR: « La lumière pour chaque peau » (poetic; 'toutes les peaux' is more idiomatic). DE: „Licht für "
                "jede Haut“ (literal works). ES: «Luz para cada piel» (natural; 'todo tipo de piel' if clarity "
                "matters more).",
            ),
        ],
        Tool.IMAGE: [
            _image(
                "Frosted glass serum bottle on a travertine plinth, soft daylight, beige and sage palette, minimal",
                "1:1",
                style="product photography",
            ),
            _image("Hands applying moisturiser in a bright bathroom, morning light, natural skin texture", "4:5"),
            _image("Macro of water droplets on a pale green leaf, clean background for a serum ad", "16:9"),
            _image("Packaging mockup: three skincare jars in sage, sand and white, shot from 45 degrees", "1:1"),
            _image("Pinterest background: soft gradient from peach to cream with subtle botanical shadows", "2:3"),
        ],
        Tool.VIDEO: [
            _video("A serum drop falling in slow motion onto a glass surface, ripples, soft studio light", "9:16"),
        ],
        Tool.SPEECH: [
            _tts(
                "Meet Lumen Dew. A lightweight serum that holds moisture all day, for skin that feels like yours "
                "again. Discover it at lumen-skin dot com.",
                "Charlotte",
            ),
            _tts("Apply two drops to clean skin, morning and evening. Follow with your usual moisturiser.", "Rachel"),
            _transcript(
                "focus-group-session-2.m4a",
                41,
                "Moderator: What was your first impression of the bottle?\nP3: It looks expensive, in a good way. "
                "Like something from a pharmacy in Paris.\nP5: I like it, but the dropper...",
            ),
        ],
        Tool.MUSIC: [
            _loop("Calm ambient piano with soft pads, 70 bpm, for a skincare ad, no vocals", 30, bpm=70),
        ],
    },
    people={"member@northwind.test": 3.0, "admin@northwind.test": 1.5},
)

MODEL_LAB = UsageProfile(
    events=70,
    mix={Tool.CHAT: 60, Tool.IMAGE: 25, Tool.VIDEO: 4, Tool.SPEECH: 5, Tool.MUSIC: 6},
    models={
        Tool.CHAT: {"gpt-4o": 30, "claude-sonnet": 30, "gemini-flash": 20, "gpt-4o-mini": 20},
        Tool.IMAGE: {"flux-pro": 25, "dall-e-3": 25, "sdxl": 25, "flux-schnell": 25},
    },
    samples={
        Tool.CHAT: [
            Sample(
                "[Eval 12] Write a 50-word product description for a recycled-wool sweater. Same brief to every "
                "model; scored blind for tone.",
                "Warm without the waste. This crew-neck is knitted from 100% recycled wool, reclaimed from "
                "end-of-line yarns and spun again in Prato. Soft, breathable and built to last winters, not "
                "seasons. Relaxed fit, ribbed cuffs, five colours.",
                {"eval": "E12"},
            ),
            Sample(
                "[Eval 14] Summarise the attached 6-page research report in 5 bullets; we check every figure "
                "against the source.",
                "- 62% of marketers use generative AI weekly (up from 38%).\n- Most use is drafting copy and "
                "resizing assets.\n- Review time, not generation, is the bottleneck.\n- Brand-safety concerns "
                "remain the top blocker.\n- Budgets are shifting from stock imagery to AI tools.",
                {"eval": "E14"},
            ),
            Sample(
                "Extract every date, amount and party from this contract clause as JSON.",
                '{"parties": ["Northwind Creative Ltd", "Lumen Skincare Ltd"], "dates": ["2026-03-01", '
                '"2026-08-31"], "amounts": [{"value": 48000, "currency": "GBP", "label": "fixed fee"}]}',
            ),
            Sample(
                "Role-play a sceptical CMO pushing back on our AI-assisted production pricing.",
                "'If the images take you minutes now, why am I paying the same day rate? Show me where the hours "
                "go — concepting, review, retouching — or I'll assume I'm paying for the old process.'",
            ),
            Sample(
                "Write a Python function that resizes an image to fit within 2048 px, keeping the aspect ratio.",
                "from PIL import Image\n\ndef fit_within(path: str, limit: int = 2048) -> Image.Image:\n"
                "    image = Image.open(path)\n    image.thumbnail((limit, limit))\n    return image",
            ),
            Sample(
                "Explain temperature and top-p to a non-technical account manager.",
                "Both control how adventurous the model is. Temperature is how bold it is when choosing each next "
                "word; top-p limits the choice to the most likely words. Low values: safe, repeatable copy. High "
                "values: more surprising ideas, and more to review.",
            ),
            Sample(
                "Rank these 8 taglines for clarity and explain each ranking in one sentence.",
                "1. 'Light for every skin' — short, concrete, on-brand. 2. 'Two drops. All day.' — a clear "
                "benefit, slightly generic. ... 8. 'Unleash your glow' — vague and overused.",
            ),
        ],
        Tool.IMAGE: [
            _image("Benchmark B3: a red fox reading a newspaper in a Paris café, watercolour", "1:1", benchmark="B3"),
            _image("Benchmark B7: text rendering, a shop sign that reads 'NORTHWIND BAKERY'", "1:1", benchmark="B7"),
            _image(
                "Benchmark B9: hands holding a coffee cup, photorealistic (count the fingers)", "1:1", benchmark="B9"
            ),
            _image("Benchmark B11: isometric city block at night, neon signs, rain", "16:9", benchmark="B11"),
        ],
        Tool.VIDEO: [
            _video("Motion test: a paper boat drifting along a rain gutter, macro", "16:9", benchmark="V2"),
        ],
        Tool.SPEECH: [
            _tts(
                "The quick brown fox jumps over the lazy dog. Pronunciation test: Worcestershire, quinoa, Niamh.",
                "Antoni",
            ),
        ],
        Tool.MUSIC: [
            _loop("Benchmark M2: lo-fi hip hop loop, 85 bpm, vinyl crackle", 30, benchmark="M2"),
            _song("Benchmark M4: short upbeat jingle with the words 'Northwind, made with care'", 30, benchmark="M4"),
        ],
    },
    people={"lead@northwind.test": 4.0, "admin@northwind.test": 1.0, "owner@northwind.test": 0.5},
)

BLUEPEAK_HQ = UsageProfile(
    events=40,
    mix={Tool.CHAT: 80, Tool.IMAGE: 8, Tool.SPEECH: 12},
    samples={
        Tool.CHAT: [
            Sample(
                "Draft a partner update memo on Q3 utilisation: 78% billable against an 82% target, two practices "
                "below plan.",
                "Partners — Q3 utilisation closed at 78%, four points under target. Risk Advisory and Tax "
                "Technology account for most of the gap (71% and 69%). Proposal: pause external hiring in both "
                "until January and move two analysts to the Harbor Bank engagement.",
            ),
            Sample(
                "Summarise the new remote-work policy as an FAQ with 8 questions.",
                "1. How many days a week am I expected in the office? Two, agreed with your team lead.\n2. Can I "
                "work from abroad? Up to 20 working days a year, with approval...",
            ),
            Sample(
                "Write a polite reminder to clients whose invoices are more than 45 days overdue.",
                "Dear {name}, our records show invoice {number} of {amount}, due on {date}, is still open. If it "
                "has already been paid, please ignore this note; otherwise we would be grateful for payment this "
                "month. Happy to help with any questions.",
            ),
            Sample(
                "Outline a 45-minute training on using AI assistants safely with client data.",
                "1. What the tools are good at (10 min). 2. What never goes in a prompt: client names, account "
                "numbers, unpublished figures (10 min). 3. Our approved tools and workspaces (10 min). 4. Review "
                "and sign-off rules (10 min). 5. Q&A (5 min).",
            ),
            Sample(
                "Turn these interview notes into a hiring recommendation for the senior analyst role.",
                "Recommend: hire. Strong on IFRS 9 and data analysis (built a provisioning model at her current "
                "bank); clear communicator. Development area: client-facing experience; pair with a manager for "
                "the first engagement.",
            ),
        ],
        Tool.IMAGE: [
            _image(
                "Cover image for the annual review: mountain ridge at blue hour, minimal, space for a title", "16:9"
            ),
        ],
        Tool.SPEECH: [
            _transcript(
                "partners-meeting.m4a",
                48,
                "Omar: Let's start with utilisation, then the Harbor Bank timetable. Dana, do you want to take us "
                "through the numbers?",
            ),
            _tts(
                "You've reached Bluepeak Consulting. Our office is open Monday to Friday, nine to six Eastern time.",
                "Daniel",
            ),
        ],
    },
)

HARBOR_BANK_AUDIT = UsageProfile(
    events=75,
    mix={Tool.CHAT: 86, Tool.SPEECH: 9, Tool.IMAGE: 5},
    models={Tool.CHAT: {"claude-sonnet": 35, "gpt-4o": 20, "gpt-4o-mini": 35, "gemini-flash": 10}},
    samples={
        Tool.CHAT: [
            Sample(
                "List the key controls to test for loan-loss provisioning under IFRS 9, grouped by stage.",
                "Stage allocation: SICR criteria approved and applied; watch-list reviews. Measurement: PD/LGD "
                "model validation, forward-looking scenarios and weights signed off. Overlays: documented rationale "
                "and approval. Data: reconciliation of loan tape to the general ledger.",
            ),
            Sample(
                "Draft a request list for the treasury team: FX positions, hedge documentation and counterparty "
                "limits as at 30 September.",
                "1. FX position report at 30/09, by currency, reconciled to the GL.\n2. Hedge designation "
                "documents and effectiveness tests for all open hedges.\n3. Counterparty limit register and "
                "breaches log for Q3.\n4. ISDA/CSA agreements for the top 10 counterparties.",
            ),
            Sample(
                "Summarise these walkthrough notes for the payments process and flag control gaps.",
                "The process matches the narrative, with two gaps: payments under $10k skip second approval (the "
                "policy says $5k), and the vendor master file can be edited by the same team that releases "
                "payments.",
            ),
            Sample(
                "Write an email to the CFO confirming the fieldwork timetable and on-site dates.",
                "Dear Ms. Alvarez, thank you for the planning meeting. As agreed, interim fieldwork runs from "
                "October 6 to 17, on site Tuesday to Thursday, with the closing meeting on October 21. We will "
                "share the request list by Friday.",
            ),
            Sample(
                "How do we sample 25 items from 4,312 wire transfers using monetary-unit sampling?",
                "Sampling interval = total value / 25. Pick a random start below the interval, then select the "
                "transfer containing every interval-th dollar. Large transfers above the interval are selected "
                "automatically and tested in full.",
            ),
            Sample(
                "Rewrite this finding in a neutral tone for the management letter: 'User access reviews were not "
                "done for 5 months.'",
                "Observation: quarterly user access reviews for the core banking system were not performed between "
                "April and August. Risk: inappropriate access may go undetected. Recommendation: perform a full "
                "review now and monitor completion monthly.",
            ),
            Sample(
                "Create a checklist for reviewing journal entries posted after 8 pm or at weekends.",
                "☐ Extract all entries posted 20:00 to 06:00 and Sat/Sun. ☐ Filter manual entries. ☐ Check preparer ≠ "
                "approver. ☐ Vouch entries over $250k to support. ☐ Look for round amounts and unusual accounts.",
            ),
        ],
        Tool.SPEECH: [
            _transcript(
                "walkthrough-treasury-ops.m4a",
                38,
                "Auditor: Can you walk me through how a new counterparty limit is approved?\nTreasury lead: Sure. "
                "It starts with a request from the front office, then credit risk reviews it...",
            ),
            _transcript(
                "closing-meeting-harbor-bank.m4a",
                27,
                "Casey: Thanks for making time. We have three observations to discuss, none of them significant "
                "deficiencies...",
            ),
        ],
        Tool.IMAGE: [
            _image("Simple flat diagram of a four-step payment approval flow, blue and grey", "16:9", style="diagram"),
        ],
    },
    people={"consultant@bluepeak.test": 4.0},
)

BLUEPEAK_MARKETING = UsageProfile(
    events=55,
    mix={Tool.CHAT: 50, Tool.IMAGE: 32, Tool.VIDEO: 3, Tool.SPEECH: 7, Tool.MUSIC: 8},
    samples={
        Tool.CHAT: [
            Sample(
                "Write a LinkedIn post announcing our whitepaper 'Banking on AI: controls that scale'.",
                "AI is already in your bank's processes. Are your controls keeping up? Our new whitepaper, "
                "'Banking on AI: controls that scale', sets out the 12 controls we see working at mid-size banks. "
                "Download it free (link in comments).",
            ),
            Sample(
                "Five webinar titles about audit automation for mid-size banks.",
                "1. Audit at the speed of data\n2. From sampling to full-population testing\n3. What regulators "
                "expect from automated controls\n4. Continuous auditing, without the hype\n5. The 2027 audit: "
                "a practical roadmap",
            ),
            Sample(
                "Draft 150 words of landing page copy for the whitepaper download, with three bullet takeaways.",
                "Banking on AI: controls that scale. Generative AI is moving from pilots into payments, lending "
                "and customer service. This guide shows risk and audit teams what good looks like.\n• The 12 "
                "controls regulators ask about first\n• How to test models you didn't build\n• A 90-day plan",
            ),
            Sample(
                "Turn this partner's blog draft into a 6-post thread.",
                "1/ Most banks we audit now use AI somewhere. Few can show who approved it. 🧵\n2/ Start with an "
                "inventory: every model, its owner, its data...\n6/ Full guide in our new whitepaper.",
            ),
            Sample(
                "Suggest a content calendar for next month: 2 blog posts, 4 LinkedIn posts, 1 newsletter.",
                "Week 1: blog 'Five controls for AI in lending' + LinkedIn teaser. Week 2: LinkedIn webinar "
                "invite. Week 3: blog 'What auditors ask first' + newsletter. Week 4: two LinkedIn posts "
                "(webinar recap, whitepaper quote card).",
            ),
        ],
        Tool.IMAGE: [
            _image("Whitepaper cover: abstract data lines forming a bank building, navy and teal", "3:4"),
            _image("Webinar banner with two speaker silhouettes, clean corporate style, blue gradient", "16:9"),
            _image("LinkedIn carousel slide background, subtle geometric pattern, navy", "1:1"),
        ],
        Tool.VIDEO: [
            _video("Animated logo sting: a blue peak drawn by a single line on white", "16:9"),
        ],
        Tool.SPEECH: [
            _tts(
                "Welcome to the Bluepeak webinar. We'll begin in two minutes; please make sure your microphone is "
                "muted.",
                "Daniel",
            ),
        ],
        Tool.MUSIC: [
            _loop("Optimistic corporate background track for a webinar intro, light percussion, 100 bpm", 30, bpm=100),
        ],
    },
)

PROFILES: dict[str, UsageProfile] = {
    "Northwind HQ": NORTHWIND_HQ,
    "Nike Spring Campaign": NIKE_SPRING,
    "Lumen Skincare Launch": LUMEN_LAUNCH,
    "GPT vs Claude Lab": MODEL_LAB,
    "Bluepeak HQ": BLUEPEAK_HQ,
    "Q3 Audit - Harbor Bank": HARBOR_BANK_AUDIT,
    "Bluepeak Marketing": BLUEPEAK_MARKETING,
}
DEFAULT_PROFILE = BLUEPEAK_HQ
