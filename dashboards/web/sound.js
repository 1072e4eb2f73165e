// The audible cue: a WebAudio beep every few seconds while an unacknowledged critical alarm is active and
// not silenced. Silencing covers the alarms sounding now; a new one (another alarm, or a new ticket) sounds again.

const REPEAT_MS = 4000;
const SILENCED_KEY = "stackwatch_silenced";

let context = null;

/** Browsers start audio only after a user gesture: the context is made on the first click or key press. */
function unlock() {
  if (!context) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try { context = new Ctx(); } catch { context = null; return; }
  }
  if (context.state === "suspended") context.resume().catch(() => {});
}

for (const kind of ["pointerdown", "keydown", "touchstart"]) {
  window.addEventListener(kind, unlock, { capture: true, passive: true });
}

function beep() {
  if (!context || context.state !== "running") return;
  const start = context.currentTime;
  for (const [offset, freq] of [[0, 880], [0.3, 660], [0.6, 880]]) {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.type = "square";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.25);
    osc.connect(gain).connect(context.destination);
    osc.start(start + offset);
    osc.stop(start + offset + 0.27);
  }
}

function loud(alarm) {
  return alarm.priority === "critical" && alarm.state === "active_unacknowledged" && !alarm.shelved_until
    && !alarm.suppressed_by && !alarm.out_of_service;
}

const identity = (alarm) => `${alarm.key}#${alarm.ticket}`;

export class AlarmSound {
  /** `eager()`: may audio start without a gesture (a wall screen, run with autoplay allowed)? */
  constructor(onChange, eager = () => false) {
    this.onChange = onChange;
    this.eager = eager;
    this.sounding = [];
    this.timer = null;
    try { this.silenced = new Set(JSON.parse(sessionStorage.getItem(SILENCED_KEY) || "[]")); } catch { this.silenced = new Set(); }
  }

  /** Called with the active alarms after every refresh. */
  update(alarms) {
    const loudNow = alarms.filter(loud).map(identity);
    // Forget silenced alarms that are no longer loud, so the set stays small.
    for (const id of [...this.silenced]) if (!loudNow.includes(id)) this.silenced.delete(id);
    this.save();
    this.sounding = loudNow.filter((id) => !this.silenced.has(id));
    if (this.sounding.length && !context && this.eager()) unlock();
    if (this.sounding.length && !this.timer) {
      beep();
      this.timer = setInterval(beep, REPEAT_MS);
    } else if (!this.sounding.length && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    this.onChange(this.isSounding(), loudNow.length > 0);
  }

  isSounding() { return this.sounding.length > 0; }

  silence() {
    for (const id of this.sounding) this.silenced.add(id);
    this.save();
    this.sounding = [];
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.onChange(false, this.silenced.size > 0);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sounding = [];
  }

  save() {
    try { sessionStorage.setItem(SILENCED_KEY, JSON.stringify([...this.silenced])); } catch { /* private mode */ }
  }
}
