#!/usr/bin/env bash
# Synthesizes the English speech clips that the Whisper tests transcribe (tests/fixtures/speech/):
# espeak-ng speaks the texts below with several voices (American, British, Scottish, female
# variants) at several speeds; sox resamples to 16 kHz mono 16-bit, adds white noise and
# silence where a clip says so, and writes FLAC (lossless, so every decoder sees the same
# samples). Deterministic: sox runs with -R (repeatable noise), espeak-ng has no randomness.
# The clips span 3 s to 90 s; the 90 s one is what chunked long-form transcription runs on.
#
# Needs espeak-ng and sox (scripts/setup-tools.sh installs them). Usage:
#   bash tests/reference/make_speech_fixtures.sh [OUT_DIR]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/tests/fixtures/speech}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# Every sox run repeatable: its noise and its dither (when it requantizes to 16 bits) are seeded.
sox() { command sox -R "$@"; }

# speak NAME VOICE WORDS_PER_MINUTE TEXT: 16 kHz mono 16-bit speech at -3 dBFS peak in $tmp/NAME.wav
speak() {
  espeak-ng -v "$2" -s "$3" -w "$tmp/$1.raw.wav" "$4"
  sox "$tmp/$1.raw.wav" -r 16000 -c 1 -b 16 "$tmp/$1.wav" norm -3
}

# noise NAME DB: white noise mixed in at DB dBFS (the speech is not attenuated by the mix)
noise() {
  local len
  len="$(soxi -D "$tmp/$1.wav")"
  sox -n -r 16000 -c 1 -b 16 "$tmp/$1.noise.wav" synth "$len" whitenoise gain "$2"
  sox -m -v 1 "$tmp/$1.wav" -v 1 "$tmp/$1.noise.wav" -b 16 "$tmp/$1.mixed.wav"
  mv "$tmp/$1.mixed.wav" "$tmp/$1.wav"
}

flac() {
  sox "$tmp/$1.wav" -r 16000 -c 1 -b 16 "$out/$1.flac"
}

# 1. about 3 s, American English, normal speed
speak us-short en-us 170 "Hello, my name is Anna. How are you today?"
flac us-short

# 2. British English, slow
speak gb-slow en-gb 120 "The train to London leaves from platform nine at a quarter past seven."
flac gb-slow

# 3. A female American voice, fast
speak us-female-fast en-us+f3 210 \
  "Please remember to buy milk, eggs, bread and a small bag of coffee on your way home tonight."
flac us-female-fast

# 4. With white noise (about 20 dB below the speech)
speak us-noisy en-us 160 \
  "The weather will be cloudy in the morning, with light rain spreading from the west in the afternoon."
noise us-noisy -26
flac us-noisy

# 5. Silence before, between and after two sentences (British female)
speak gb-female-a en-gb+f2 150 "We met at the library on Monday."
speak gb-female-b en-gb+f2 150 "On Tuesday we walked along the river and talked about books."
sox "$tmp/gb-female-a.wav" "$tmp/gb-female-a.pad.wav" pad 2 3
sox "$tmp/gb-female-a.pad.wav" "$tmp/gb-female-b.wav" "$tmp/gb-female-silence.wav" pad 0 2.5
flac gb-female-silence

# 6. Numbers, dates and names, Scottish English
speak scotland-numbers en-gb-scotland 150 \
  "In nineteen ninety eight, twelve students from Glasgow walked forty two miles in three days."
flac scotland-numbers

# 7. About 25 s, one window: a short story, American, light noise
speak us-story en-us 165 "Once upon a time, a small robot lived in a quiet workshop at the edge of a village. \
Every morning it swept the floor, polished the tools, and waited for the old clockmaker to arrive. \
One day the clockmaker did not come. The robot opened the door for the first time and rolled \
outside, into the bright and noisy street."
noise us-story -40
flac us-story

# 8. About 90 s: several voices and speeds one after the other, with pauses and light noise
# (long-form: chunked transcription with chunk_length_s=30 and strides).
speak long-1 en-us 160 "Welcome to the evening news. Here are the main stories of the day. \
The city council has approved a plan to build three new parks in the northern district. \
Work will begin in the spring and should be finished within two years."
speak long-2 en-gb 150 "In sport, the national team won its final match of the season by two goals to one. \
The captain said the players had worked hard all year and deserved the victory."
speak long-3 en-us+f3 170 "And now the weather. Tomorrow will start cold and bright, but clouds will \
move in from the coast by midday. Expect some showers in the evening, with temperatures falling to \
four degrees overnight. The weekend looks drier and a little warmer."
speak long-4 en-gb-scotland 140 "Finally, a story from the museum. Volunteers have finished repairing an \
old steam engine that had been standing in a barn for more than sixty years. It will be shown to \
visitors next month, and children will be able to ride on it during the summer holidays."
speak long-5 en-us+f2 165 "In business news, a local bakery has opened its fifth shop this year. \
The owners started with one small oven in their kitchen, and now employ more than eighty people. \
They plan to open a cafe near the central station before the end of the year."
speak long-6 en-us 175 "That is all for tonight. Thank you for watching, and good night."
sox "$tmp/long-1.wav" "$tmp/long-1.p.wav" pad 0.5 1.5
sox "$tmp/long-2.wav" "$tmp/long-2.p.wav" pad 0 2
sox "$tmp/long-3.wav" "$tmp/long-3.p.wav" pad 0 1.5
sox "$tmp/long-4.wav" "$tmp/long-4.p.wav" pad 0 2
sox "$tmp/long-5.wav" "$tmp/long-5.p.wav" pad 0 1
sox "$tmp/long-1.p.wav" "$tmp/long-2.p.wav" "$tmp/long-3.p.wav" "$tmp/long-4.p.wav" "$tmp/long-5.p.wav" \
  "$tmp/long-6.wav" "$tmp/long-news.wav"
len="$(soxi -D "$tmp/long-news.wav")"
# Pad (or trim) to exactly 90 s, so the clip has three full 30 s windows' worth of audio.
sox "$tmp/long-news.wav" "$tmp/long-news.90.wav" pad 0 "$(awk "BEGIN { print 90 - $len }")" trim 0 90
mv "$tmp/long-news.90.wav" "$tmp/long-news.wav"
noise long-news -45
flac long-news
echo "speech before padding: ${len}s"

for f in "$out"/*.flac; do
  printf '%-28s %6.2fs %8d bytes\n' "$(basename "$f")" "$(soxi -D "$f")" "$(stat -c %s "$f")"
done
