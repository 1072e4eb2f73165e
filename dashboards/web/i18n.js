// Chinese and English strings, the chosen language (localStorage, default zh) and formatting in the site's zone.

const STRINGS = {
  zh: {
    title: "库房监控",
    overview: "总览", alarms: "告警", kiosk: "大屏", logout: "退出", lang: "English",
    login: "登录", user: "用户名", password: "密码", login_failed: "用户名或密码错误",
    login_locked: "登录失败次数过多，请稍后再试", login_error: "无法登录：{detail}",
    role_viewer: "查看", role_operator: "值班员", role_inspector: "检查员", role_admin: "管理员",
    live: "实时", stale: "连接中断", stale_banner: "与服务器的实时连接已中断，显示的数值可能不是最新的（{age}前）。正在重连…",
    stale_banner_never: "尚未连接到实时数据。正在连接…",
    silence: "静音", silenced: "已静音", sound_on: "告警声已开启",
    floor: "{floor} 层", other_floors: "其他",
    temperature: "温度", humidity: "相对湿度", dew_point: "露点",
    fire: "火警", water_leak: "漏水", door_open: "门开", smoke: "烟雾", motion: "有人移动",
    fire_pre_alarm: "火灾预警", fire_trouble: "消防故障", suppression_pre_discharge: "灭火预释放",
    suppression_discharge: "灭火释放",
    status_normal: "正常", status_warning: "预警", status_alarm: "告警", status_no_data: "无数据",
    no_alarms: "无活动告警", active_alarms: "活动告警 {n} 条", show_all: "全部 {n} 条", show_less: "收起",
    acknowledge: "确认", shelve: "搁置", unshelve: "取消搁置", journal: "日志", comment: "备注",
    reason: "原因", minutes: "分钟", submit: "提交", cancel: "取消", send_ack: "确认告警", send_shelve: "搁置告警",
    refused: "操作被拒绝：{detail}", forbidden: "您的角色无权执行此操作",
    since: "开始", age: "持续", value: "数值", limit: "限值", state: "状态", priority: "优先级",
    cause: "原因", room: "库房", source: "来源", time: "时间", kind: "事件", actor: "操作人",
    acked_by: "{user} 已确认", shelved_until: "搁置至 {time}（{user}：{reason}）", suppressed: "被 {by} 抑制",
    out_of_service: "停用", past_alarms: "过去 7 天的告警", none: "无",
    prio_critical: "紧急", prio_high: "高", prio_medium: "中", prio_low: "低",
    st_active_unacknowledged: "未确认", st_active_acknowledged: "已确认", st_returned_unacknowledged: "已恢复未确认",
    st_normal: "正常",
    range_24h: "24 小时", range_7d: "7 天", range_30d: "30 天", range_custom: "自定义", apply: "应用",
    from: "从", to: "至", limits: "限值", profile: "保管类别", daily_range: "日波动",
    daily_table: "日波动（最大值 − 最小值）", allowance: "允许", day: "日期",
    points: "测点", point: "测点", quality: "质量", fresh_no: "过期",
    q_good: "良好", q_uncertain: "可疑", q_bad: "故障", q_comm_failure: "通信故障", q_stale: "过期",
    control: "环境控制", no_control: "未配置空调控制",
    alarm_periods: "告警时段", events: "事件", ongoing: "持续中", loading: "加载中…",
    no_history: "无历史数据", history_error: "历史数据不可用：{detail}",
    not_found: "未找到", back: "返回", kiosk_building: "{i}/{n}",
    k_raised: "触发", k_reactivated: "再次触发", k_returned: "恢复", k_cleared: "解除",
    k_acknowledged: "确认", k_realarm: "重复告警", k_escalated: "升级", k_shelved: "搁置",
    k_unshelved: "取消搁置", k_suppressed: "抑制", k_unsuppressed: "解除抑制",
    k_out_of_service: "停用", k_in_service: "启用",
    min: "分钟", hour: "小时", day_unit: "天", sec: "秒", yes: "是", no: "否", detail: "详情", connecting: "连接中…", session_expired: "登录已过期，请重新登录",
    location: "{building}，{floor} 层", current: "当前", room_alarms: "本库房的告警",
    bad_range: "开始日期必须早于结束日期", updated: "更新于 {time}",
    ctl_mode_auto: "自动", ctl_mode_manual: "手动", ctl_mode_interlock: "联锁", ctl_mode_hold: "保持",
    ctl_loop_humidity: "湿度回路", ctl_loop_temperature: "温度回路",
    ctl_target: "目标（区间）", ctl_measured: "实测", ctl_period: "时段", ctl_period_default: "常规",
    ctl_period_night: "夜间", ctl_period_day: "白天", ctl_period_summer: "夏季", ctl_period_winter: "冬季",
    ctl_problem: "问题",
    ctl_interlock_ok: "联锁：正常", ctl_fire_latched: "消防联锁已停止空气处理；确认安全后复位",
    ctl_fire_active: "火警仍未解除：解除后才能复位", ctl_fire_cleared: "火警已于 {time} 解除，等待复位",
    ctl_tripped: "{time} 由 {cause} 触发",
    ctl_leak_latched: "漏水联锁：阀门已关闭、加湿器已停止；修复后复位", ctl_leak_active: "仍在漏水：解除后才能复位",
    ctl_leak_cleared: "漏水已解除，等待复位", ctl_leak_cause: "由 {cause} 触发",
    ctl_reset: "复位联锁", ctl_reset_send: "确认复位", ctl_reset_reason: "已检查的内容（原因）",
    ctl_actuators: "执行器", ctl_kind_switch: "开关", ctl_kind_setpoint: "设定值", ctl_kind_mode: "模式",
    ctl_role_dehumidifier: "除湿机", ctl_role_humidifier: "加湿机", ctl_role_temperature_setpoint: "空调温度设定值",
    ctl_role_air_handling: "空调/送风", ctl_role_damper: "新风阀", ctl_role_leak_valve: "供水阀",
    ctl_on: "开", ctl_off: "关",
    ctl_src_auto: "自动", ctl_src_manual: "手动", ctl_src_interlock: "联锁",
    ctl_v_verified: "已核实", ctl_v_pending: "等待回读", ctl_v_retry: "重试中", ctl_v_failed: "失败", ctl_v_unknown: "未知",
    ctl_readback: "回读", ctl_issued: "{time} 下发", ctl_attempts: "重试 {n} 次", ctl_starts: "启动次数",
    ctl_on_for: "已运行 {age}", ctl_off_for: "已停止 {age}",
    ctl_override: "手动（{who}）：{reason}，至 {until}（剩余 {left}）",
    ctl_manual: "手动…", ctl_hold: "手动保持…", ctl_auto: "恢复自动", ctl_send_override: "设为手动",
    ctl_hold_hint: "回路保持机组当前状态，到期自动恢复", ctl_reason_needed: "请填写原因",
    ctl_log: "控制日志（最近 20 条）", ctl_log_empty: "无记录", ctl_target_col: "对象",
    ctl_ev_command: "指令", ctl_ev_verified: "已核实", ctl_ev_mismatch: "回读不符", ctl_ev_failed: "失败",
    ctl_ev_write_error: "写入错误", ctl_ev_recovered: "已恢复", ctl_ev_interlock: "联锁", ctl_ev_override: "手动",
    ctl_ev_override_end: "恢复自动", ctl_ev_reset: "复位",
    ctl_unavailable: "控制状态不可用：{detail}",
    ctl_outranked: "联锁优先于手动：手动设置在联锁复位后才生效",
  },
  en: {
    title: "Stack rooms",
    overview: "Overview", alarms: "Alarms", kiosk: "Wall screen", logout: "Log out", lang: "中文",
    login: "Log in", user: "User name", password: "Password", login_failed: "Wrong user name or password",
    login_locked: "Too many failed logins; try again later", login_error: "Cannot log in: {detail}",
    role_viewer: "viewer", role_operator: "operator", role_inspector: "inspector", role_admin: "admin",
    live: "live", stale: "connection lost",
    stale_banner: "The live connection to the server is lost; values shown may be out of date (last update {age} ago). Reconnecting…",
    stale_banner_never: "Not connected to live data yet. Connecting…",
    silence: "Silence", silenced: "Silenced", sound_on: "Alarm sound on",
    floor: "Floor {floor}", other_floors: "Other",
    temperature: "Temperature", humidity: "Relative humidity", dew_point: "Dew point",
    fire: "Fire", water_leak: "Water leak", door_open: "Door open", smoke: "Smoke", motion: "Motion",
    fire_pre_alarm: "Fire pre-alarm", fire_trouble: "Fire trouble", suppression_pre_discharge: "Suppression pre-discharge",
    suppression_discharge: "Suppression discharge",
    status_normal: "normal", status_warning: "warning", status_alarm: "alarm", status_no_data: "no data",
    no_alarms: "No active alarms", active_alarms: "{n} active alarms", show_all: "All {n}", show_less: "Less",
    acknowledge: "Acknowledge", shelve: "Shelve", unshelve: "Unshelve", journal: "Journal", comment: "Comment",
    reason: "Reason", minutes: "minutes", submit: "Submit", cancel: "Cancel", send_ack: "Acknowledge alarm",
    send_shelve: "Shelve alarm",
    refused: "Refused: {detail}", forbidden: "Your role may not do this",
    since: "Since", age: "For", value: "Value", limit: "Limit", state: "State", priority: "Priority",
    cause: "Cause", room: "Room", source: "Source", time: "Time", kind: "Event", actor: "By",
    acked_by: "acknowledged by {user}", shelved_until: "shelved until {time} ({user}: {reason})",
    suppressed: "suppressed by {by}", out_of_service: "out of service", past_alarms: "Alarms of the last 7 days",
    none: "none",
    prio_critical: "critical", prio_high: "high", prio_medium: "medium", prio_low: "low",
    st_active_unacknowledged: "unacknowledged", st_active_acknowledged: "acknowledged",
    st_returned_unacknowledged: "returned, unacknowledged", st_normal: "normal",
    range_24h: "24 h", range_7d: "7 d", range_30d: "30 d", range_custom: "Custom", apply: "Apply",
    from: "From", to: "To", limits: "Limits", profile: "Profile", daily_range: "Daily range",
    daily_table: "Daily fluctuation (max − min)", allowance: "allowed", day: "Day",
    points: "Points", point: "Point", quality: "Quality", fresh_no: "not fresh",
    q_good: "good", q_uncertain: "uncertain", q_bad: "bad", q_comm_failure: "comm failure", q_stale: "stale",
    control: "Climate control", no_control: "No climate control configured",
    alarm_periods: "Alarm periods", events: "Events", ongoing: "ongoing", loading: "Loading…",
    no_history: "No history", history_error: "History unavailable: {detail}",
    not_found: "Not found", back: "Back", kiosk_building: "{i}/{n}",
    k_raised: "raised", k_reactivated: "reactivated", k_returned: "returned", k_cleared: "cleared",
    k_acknowledged: "acknowledged", k_realarm: "re-alarm", k_escalated: "escalated", k_shelved: "shelved",
    k_unshelved: "unshelved", k_suppressed: "suppressed", k_unsuppressed: "unsuppressed",
    k_out_of_service: "out of service", k_in_service: "in service",
    min: "min", hour: "h", day_unit: "d", sec: "s", yes: "yes", no: "no", detail: "Detail", connecting: "connecting…", session_expired: "Your session has ended; please log in again",
    location: "{building}, floor {floor}", current: "Now", room_alarms: "Alarms of this room",
    bad_range: "The start date must be before the end date", updated: "updated {time}",
    ctl_mode_auto: "auto", ctl_mode_manual: "manual", ctl_mode_interlock: "interlock", ctl_mode_hold: "hold",
    ctl_loop_humidity: "Humidity loop", ctl_loop_temperature: "Temperature loop",
    ctl_target: "Target (band)", ctl_measured: "Measured", ctl_period: "Period", ctl_period_default: "standard",
    ctl_period_night: "night", ctl_period_day: "day", ctl_period_summer: "summer", ctl_period_winter: "winter",
    ctl_problem: "Problem",
    ctl_interlock_ok: "Interlocks: normal", ctl_fire_latched: "Air handling stopped by fire interlock; reset when safe",
    ctl_fire_active: "The fire panel still reports fire: reset once it clears",
    ctl_fire_cleared: "Fire cleared at {time}; awaiting reset", ctl_tripped: "tripped at {time} by {cause}",
    ctl_leak_latched: "Water leak interlock: valves closed, humidifier off; reset when repaired",
    ctl_leak_active: "The leak is still detected: reset once it clears", ctl_leak_cleared: "Leak cleared; awaiting reset",
    ctl_leak_cause: "tripped by {cause}",
    ctl_reset: "Reset interlock", ctl_reset_send: "Reset now", ctl_reset_reason: "What was checked (reason)",
    ctl_actuators: "Actuators", ctl_kind_switch: "switch", ctl_kind_setpoint: "set-point", ctl_kind_mode: "mode",
    ctl_role_dehumidifier: "dehumidifier", ctl_role_humidifier: "humidifier",
    ctl_role_temperature_setpoint: "HVAC set-point", ctl_role_air_handling: "air handling", ctl_role_damper: "damper",
    ctl_role_leak_valve: "water valve",
    ctl_on: "on", ctl_off: "off",
    ctl_src_auto: "auto", ctl_src_manual: "manual", ctl_src_interlock: "interlock",
    ctl_v_verified: "verified", ctl_v_pending: "pending", ctl_v_retry: "retrying", ctl_v_failed: "failed", ctl_v_unknown: "unknown",
    ctl_readback: "read-back", ctl_issued: "issued {time}", ctl_attempts: "{n} retries", ctl_starts: "starts",
    ctl_on_for: "on for {age}", ctl_off_for: "off for {age}",
    ctl_override: "manual by {who}: {reason}, until {until} ({left} left)",
    ctl_manual: "Manual…", ctl_hold: "Hold (manual)…", ctl_auto: "Back to automatic", ctl_send_override: "Set manual",
    ctl_hold_hint: "The loop holds its units as they are until the override expires", ctl_reason_needed: "A reason is required",
    ctl_log: "Control log (last 20)", ctl_log_empty: "No entries", ctl_target_col: "Target",
    ctl_ev_command: "command", ctl_ev_verified: "verified", ctl_ev_mismatch: "read-back mismatch", ctl_ev_failed: "failed",
    ctl_ev_write_error: "write error", ctl_ev_recovered: "recovered", ctl_ev_interlock: "interlock",
    ctl_ev_override: "manual", ctl_ev_override_end: "back to automatic", ctl_ev_reset: "reset",
    ctl_unavailable: "Control state unavailable: {detail}",
    ctl_outranked: "The interlock outranks manual: the override takes effect once the room is reset",
  },
};

const CAUSES = {
  zh: {
    temperature_high: "温度过高", temperature_low: "温度过低", humidity_high: "湿度过高", humidity_low: "湿度过低",
    temperature_rate: "温度变化过快", humidity_rate: "湿度变化过快", temperature_fluctuation: "温度日波动超限",
    humidity_fluctuation: "湿度日波动超限", mould_risk: "霉变风险", condensation_risk: "结露风险",
    fire: "火警", smoke: "烟雾", water_leak: "漏水", suppression_pre_discharge: "灭火预释放",
    suppression_discharge: "灭火释放", door_forced: "门被强行打开", intrusion: "非开放时间有人",
    fire_pre_alarm: "火灾预警", fire_trouble: "消防故障", fire_zone_disabled: "防区被禁用",
    leak_cable_fault: "漏水感应线故障", door_held_open: "门长时间未关", sensor_fault: "传感器故障",
    no_data: "无数据", comm_loss: "设备通信中断", gateway_comm_loss: "网关通信中断", calibration_due: "校准到期",
    control_failure: "控制指令未执行", control_input: "控制回路无可用读数", control_interlock: "控制联锁已触发",
  },
  en: {
    temperature_high: "Temperature high", temperature_low: "Temperature low", humidity_high: "Humidity high",
    humidity_low: "Humidity low", temperature_rate: "Temperature changing fast", humidity_rate: "Humidity changing fast",
    temperature_fluctuation: "Temperature daily range", humidity_fluctuation: "Humidity daily range",
    mould_risk: "Mould risk", condensation_risk: "Condensation risk", fire: "Fire", smoke: "Smoke",
    water_leak: "Water leak", suppression_pre_discharge: "Suppression pre-discharge",
    suppression_discharge: "Suppression discharge", door_forced: "Door forced", intrusion: "Intrusion",
    fire_pre_alarm: "Fire pre-alarm", fire_trouble: "Fire trouble", fire_zone_disabled: "Fire zone disabled",
    leak_cable_fault: "Leak cable fault", door_held_open: "Door held open", sensor_fault: "Sensor fault",
    no_data: "No data", comm_loss: "Device not answering", gateway_comm_loss: "Gateway not answering",
    calibration_due: "Calibration due",
    control_failure: "Control command not carried out", control_input: "Control loop has no usable reading",
    control_interlock: "Control interlock tripped",
  },
};

let lang = localStorage.getItem("stackwatch_lang") === "en" ? "en" : "zh";
let zone = "UTC";

export function getLang() { return lang; }

export function setLang(next) {
  lang = next === "en" ? "en" : "zh";
  localStorage.setItem("stackwatch_lang", lang);
  document.documentElement.lang = lang;
}

export function setZone(timezone) { zone = timezone || "UTC"; }

/** A string in the current language with `{name}` placeholders filled; the key itself when unknown. */
export function t(key, params = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (params[name] ?? ""));
}

export function cause(code) { return CAUSES[lang][code] ?? code ?? ""; }

const locale = () => (lang === "zh" ? "zh-CN" : "en-GB");
const formats = new Map();

function formatter(kind) {
  const id = `${lang}|${zone}|${kind}`;
  if (!formats.has(id)) {
    const options = {
      datetime: { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" },
      minute: { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" },
      time: { hour: "2-digit", minute: "2-digit" },
      clock: { hour: "2-digit", minute: "2-digit", second: "2-digit" },
      date: { month: "2-digit", day: "2-digit" },
      day: { year: "numeric", month: "2-digit", day: "2-digit", weekday: "short" },
    }[kind];
    formats.set(id, new Intl.DateTimeFormat(locale(), { ...options, hourCycle: "h23", timeZone: zone }));
  }
  return formats.get(id);
}

/** Epoch seconds formatted in the site's time zone; kind: datetime, minute, time, clock, date, day. */
export function fmtTime(epochSeconds, kind = "datetime") {
  if (epochSeconds == null) return "—";
  return formatter(kind).format(new Date(epochSeconds * 1000));
}

/** The calendar date (YYYY-MM-DD) of an instant in the site's zone. */
export function siteDate(epochSeconds) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date(epochSeconds * 1000));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Epoch seconds of local midnight (site zone) starting `YYYY-MM-DD`. */
export function siteMidnight(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d) / 1000;
  // The zone's offset at that instant, then corrected once more around DST changes.
  let at = guess - offsetSeconds(guess);
  at = guess - offsetSeconds(at);
  return at;
}

function offsetSeconds(epochSeconds) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
    hour: "numeric", minute: "numeric", second: "numeric",
  }).formatToParts(new Date(epochSeconds * 1000));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"), get("second"));
  return Math.round(asUtc / 1000 - Math.floor(epochSeconds));
}

/** A duration as "12 min", "3 h 5 min", "2 d 4 h" (zh: "12 分钟"). */
export function fmtAge(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.floor(seconds));
  const sep = " ";
  if (s < 60) return `${s}${sep}${t("sec")}`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}${sep}${t("min")}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}${sep}${t("hour")}${m % 60 ? ` ${m % 60}${sep}${t("min")}` : ""}`;
  const d = Math.floor(h / 24);
  return `${d}${sep}${t("day_unit")}${h % 24 ? ` ${h % 24}${sep}${t("hour")}` : ""}`;
}

/** A number with one decimal, or "—". */
export function fmt1(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(1) : "—";
}
