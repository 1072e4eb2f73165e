"""Every word the PDF report prints, in Chinese and English.

`label(key, lang)` is the only way the renderer gets text. A key with no entry (a section or field another
part of the report added after this table was written) falls back to the key itself made readable
(`time_to_acknowledge` → "Time to acknowledge"), so a new section is never dropped for want of a label.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

# key: (English, Chinese)
_LABELS: dict[str, tuple[str, str]] = {
    # title page
    "title": ("Environmental compliance report", "环境合规报告"),
    "site": ("Site", "场馆"),
    "period": ("Period", "报告期"),
    "generated": ("Generated", "生成时间"),
    "times_in": ("Times in", "时间均为"),
    "key_figures": ("Key figures per room", "各库房关键指标"),
    "key_figures_note": ("Shaded cells need attention: time in range or days within the fluctuation allowance "
                         "below 95 %, TWPI below 45 (risk) or 75 (ok), any mould-risk day, completeness below 95 %.",
                         "底色标出需要关注的指标：达标时间或日波动达标天数低于 95%，TWPI 低于 45（风险）或 75（一般），"
                         "出现霉变风险天数，数据完整率低于 95%。"),
    "attention": ("Rooms needing attention", "需要关注的库房"),
    "no_attention": ("No room needs attention.", "没有需要关注的库房。"),
    "page": ("Page", "第"),
    "page_suffix": ("", "页"),
    # key figure columns
    "room": ("Room", "库房"),
    "profile": ("Profile", "标准"),
    "t_within": ("T in range", "温度达标"),
    "rh_within": ("RH in range", "湿度达标"),
    "t_days": ("T days within allowance", "温度日波动达标"),
    "rh_days": ("RH days within allowance", "湿度日波动达标"),
    "twpi": ("TWPI", "TWPI"),
    "mould_days": ("Mould-risk days", "霉变风险天数"),
    "completeness": ("Completeness", "数据完整率"),
    # quantities and figures
    "temperature": ("Temperature", "温度"),
    "humidity": ("Relative humidity", "相对湿度"),
    "unit_t": ("°C", "°C"),
    "unit_rh": ("% RH", "% RH"),
    "limits": ("Limits", "限值"),
    "low": ("Low", "下限"),
    "high": ("High", "上限"),
    "daily_allowance": ("Daily allowance", "日波动允许值"),
    "min": ("Minimum", "最小值"),
    "mean": ("Mean", "平均值"),
    "max": ("Maximum", "最大值"),
    "share_of_period": ("Time in range (of the period)", "达标时间（占全期）"),
    "share_of_known": ("Time in range (of measured time)", "达标时间（占有数据时间）"),
    "unknown_time": ("Time without data", "无数据时间"),
    "days_within": ("Days within the fluctuation allowance", "日波动达标天数"),
    "samples": ("Hours with data / expected", "有数据小时数 / 应有"),
    "gaps": ("Gaps in the data", "数据缺失"),
    "gap_count": ("Gaps", "缺失段数"),
    "excursions": ("Excursions", "超限"),
    "no_excursions": ("No excursion.", "无超限。"),
    "no_gaps": ("No gap.", "无数据缺失。"),
    "more_rows": ("… and {n} more (all are in the JSON and CSV)", "… 另有 {n} 条（完整内容见 JSON 与 CSV）"),
    "start": ("Start", "开始"),
    "end": ("End", "结束"),
    "duration": ("Duration", "持续"),
    "peak": ("Peak", "峰值"),
    "side": ("Side", "方向"),
    "limit": ("Limit", "限值"),
    "ended_by": ("Ended by", "结束方式"),
    "return": ("return within limits", "回到限值内"),
    "gap": ("data gap", "数据中断"),
    "quantity": ("Quantity", "参数"),
    "limit_sources": ("Limits from", "限值来源"),
    "preservation": ("Preservation metrics", "保存指标"),
    "twpi_rating": ("TWPI rating", "TWPI 等级"),
    "good": ("good", "良好"),
    "ok": ("ok", "一般"),
    "risk": ("risk", "风险"),
    "emc_range": ("EMC range", "平衡含水率范围"),
    "mould_risk_factor": ("Mould risk factor", "霉变风险系数"),
    "hours_measured": ("Hours with T and RH", "温湿度同时有数据小时数"),
    "source": ("Source", "依据"),
    "resolution": ("Resolution", "数据分辨率"),
    "chart_legend": ("Line: hourly mean; shading: hourly min–max; green band: limits; red: excursions; "
                     "grey: no data.",
                     "曲线：小时平均值；浅蓝：小时最小–最大；绿带：限值范围；红色：超限；灰色：无数据。"),
    "chart_bucketed": ("Drawn at {hours} h per step (min, max and mean of the hours in each step).",
                       "每步 {hours} 小时绘制（取各步内小时值的最小、最大、平均）。"),
    "no_data": ("No data in the period.", "报告期内无数据。"),
    # sections
    "room_detail": ("Room detail", "库房详情"),
    "alarm_performance": ("Alarm-system performance", "报警系统性能"),
    "alarm_history": ("Alarm and response history", "报警与响应记录"),
    "alarms": ("Alarms", "报警"),
    "no_alarms": ("No alarm in the period.", "报告期内无报警。"),
    "time_to_acknowledge": ("Time to acknowledge by priority", "按优先级的确认时间"),
    "shelved_or_out_of_service": ("Shelved and out-of-service periods", "搁置与停用期间"),
    "shelved": ("Shelved and out-of-service periods", "搁置与停用期间"),
    "none_listed": ("None.", "无。"),
    "safety_events": ("Fire and security log", "消防与安防记录"),
    "fire_security": ("Fire and security log", "消防与安防记录"),
    "integrity": ("Integrity", "数据可信性"),
    "audit_chain": ("Audit chain", "审计链"),
    "audit_ok": ("verified: {rows} rows, unbroken", "已校验：{rows} 条，完整无断链"),
    "audit_broken": ("BROKEN at row {first}: {reason}", "在第 {first} 条断链：{reason}"),
    "audit_missing": ("no audit trail found", "未找到审计记录"),
    "config_sha256": ("Site file (SHA-256) the limits came from", "限值所依据的站点配置文件（SHA-256）"),
    "resolutions": ("Resolution of each figure", "各指标的数据分辨率"),
    "figure": ("Figure", "指标"),
    "chart_resolution": ("hourly roll-ups from the history store, one row per hour and sensor",
                         "来自历史库的小时汇总，每传感器每小时一行"),
    "charts": ("Charts", "图表"),
    # alarm fields
    "ticket": ("Ticket", "编号"),
    "alarm": ("Alarm", "报警点"),
    "cause": ("Cause", "原因"),
    "priority": ("Priority", "优先级"),
    "raised": ("Raised", "发生"),
    "acknowledged": ("Acknowledged", "确认"),
    "acknowledged_by": ("By", "确认人"),
    "comment": ("Comment", "备注"),
    "cleared": ("Cleared", "恢复"),
    "notifications": ("Notifications", "通知"),
    "value": ("Value", "数值"),
    "median_seconds_to_acknowledge": ("Median to acknowledge", "确认时间中位数"),
    "p90_seconds_to_acknowledge": ("90th percentile to acknowledge", "确认时间 90 分位"),
    "critical": ("critical", "紧急"),
    "medium": ("medium", "中"),
    "low_priority": ("low", "低"),
    "kind": ("Kind", "类型"),
    "at": ("At", "时间"),
    "by": ("By", "操作人"),
    "reason": ("Reason", "原因"),
    "until": ("Until", "至"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "building": ("Building", "楼"),
    "name": ("Name", "名称"),
}


def label(key: str, lang: Lang) -> str:
    """The text for `key` in `lang`; an unknown key made readable (its words, first letter capitalised)."""
    found = _LABELS.get(key)
    if found is None:
        words = key.replace("_", " ").strip()
        return words[:1].upper() + words[1:]
    return found[1] if lang == "zh" else found[0]


def known(key: str) -> bool:
    return key in _LABELS
