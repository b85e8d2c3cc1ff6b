// Labels in Chinese (default) and English. t("group.id") falls back to the other
// language, then to the id made readable, so a new state or field never shows blank.

const ZH = {
  "app.title": "协同工作台",
  "nav.board": "案件看板", "nav.new": "新建移送", "nav.command": "指挥调度",
  "nav.stats": "统计分析", "nav.logout": "退出",
  "login.title": "登录", "login.username": "用户名", "login.password": "密码", "login.otp": "动态验证码（6位）",
  "login.submit": "登录", "login.hint": "使用单位账号登录；所见数据以您的角色权限为准。",
  "login.expired": "登录已过期，请重新登录。",
  "common.loading": "加载中…", "common.refresh": "刷新", "common.none": "无",
  "common.empty": "没有符合条件的记录", "common.all": "全部", "common.back": "返回",
  "common.submit": "提交", "common.add": "添加", "common.remove": "删除",
  "common.optional": "选填", "common.required": "必填", "common.yes": "是", "common.no": "否",
  "common.error": "出错了", "common.saved": "已提交", "common.details": "详情",
  "common.count": "共 {n} 条", "common.syncing": "看板同步中，稍后刷新即可看到最新状态。",
  "board.title": "案件看板", "board.search": "案件编号、车牌或当事人",
  "board.overdue": "仅看超期", "board.closed": "含已办结", "board.export": "导出",
  "board.case": "案件编号", "board.kind": "类型", "board.state": "状态",
  "board.owner": "承办单位", "board.counterpart": "对口单位", "board.county": "县区",
  "board.age": "已历时", "board.deadline": "下一期限", "board.due": "到期时间",
  "board.left": "剩余时间", "board.overdue_by": "超期 {d}", "board.no_deadline": "—",
  "board.filters": "筛选",
  "filter.kind": "类型", "filter.county": "县区", "filter.agency": "对口部门",
  "filter.domain": "领域", "filter.state": "状态",
  "handoff.summary": "基本情况", "handoff.timeline": "办理时间线",
  "handoff.documents": "移送材料清单（第六条）", "handoff.actions": "可办理事项",
  "handoff.no_actions": "当前状态下，您的角色没有可办理的事项。",
  "handoff.attached": "已附", "handoff.missing": "未附", "handoff.parties": "当事人",
  "handoff.recommendations": "研判意见", "handoff.on_time": "按期", "handoff.late": "逾期",
  "handoff.met": "履行期限", "handoff.by": "办理人", "handoff.step": "步骤",
  "handoff.tracker_missing": "看板尚未收到此案件的事件，以下为业务系统的记录。",
  "handoff.not_visible": "您无权查看此案件的业务详情。",
  "handoff.article": "依据第 {a} 条",
  "new.title": "新建", "new.none": "您的角色不能新建案件。", "new.created": "已创建 {n}",
  "command.title": "指挥调度", "command.joint": "联合行动", "command.assistance": "协查请求",
  "command.recipients": "承办单位", "command.escalations": "超时升级",
  "command.window": "行动时段", "command.area": "区域", "command.priority": "优先级",
  "command.instructions": "行动要求", "command.location": "地点",
  "command.acked": "签收", "command.reported": "报送", "command.progress": "进展",
  "command.result": "结果", "command.status": "状态", "command.ack_due": "签收期限",
  "command.report_due": "报送期限", "command.no_escalations": "无超时升级",
  "command.unit": "单位", "command.missed": "超时事项", "command.due": "应办时间",
  "command.escalated_at": "升级时间", "command.escalated_to": "升级至",
  "command.dispatcher": "下达单位", "command.from": "请求方", "command.to": "被请求方",
  "command.none": "没有您可查看的记录",
  "recipient.dispatched": "待签收", "recipient.acknowledged": "已签收",
  "recipient.reported": "已报送",
  "stats.title": "统计分析", "stats.by_month": "按月办理量", "stats.by_county": "县区排名",
  "stats.per_step": "各环节平均用时（小时）", "stats.filing_rate": "立案率（公安立案 / 作出决定）",
  "stats.total": "案件总数", "stats.open": "在办", "stats.overdue": "超期",
  "stats.closed": "已办结", "stats.filing": "立案率", "stats.start": "起始日期",
  "stats.end": "截止日期", "stats.kind": "类型", "stats.no_data": "暂无数据",
  "stats.hours": "小时", "stats.cases": "件",
  "unit.day": "天", "unit.hour": "小时", "unit.minute": "分钟",
  "form.json_invalid": "不是有效的 JSON", "form.invalid": "请检查标出的字段",
  "form.json_hint": "JSON 对象，例如 {example}", "form.lines_hint": "每行一项",
  "form.datetime_hint": "北京时间",

  "role.city_command": "市指挥中心", "role.county_command": "县级指挥中心",
  "role.enforcement_unit": "执法大队", "role.agency_head": "执法机构负责人",
  "role.police": "公安机关", "role.procuratorate": "人民检察院",
  "role.market_regulation": "市场监管部门", "role.coordinator": "协调员",
  "role.operator": "运维", "role.system": "系统",

  "kind.criminal_referral": "行刑衔接移送", "kind.market_referral": "市场监管移送",
  "kind.joint_action": "联合行动", "kind.assistance_request": "协查请求",

  "agency.police": "公安", "agency.market_regulation": "市场监管", "agency.command": "指挥中心",
  "agency.transport": "交通运输",

  "domain.key_vehicles": "重点车辆", "domain.overloading": "超限超载",
  "domain.illegal_operation": "非法营运", "domain.ride_hailing": "网约车",
  "domain.driving_training": "驾驶培训",

  "county.lucheng": "鹿城区", "county.longwan": "龙湾区", "county.ouhai": "瓯海区",
  "county.dongtou": "洞头区", "county.ruian": "瑞安市", "county.yueqing": "乐清市",
  "county.longgang": "龙港市", "county.yongjia": "永嘉县", "county.pingyang": "平阳县",
  "county.cangnan": "苍南县", "county.wencheng": "文成县", "county.taishun": "泰顺县",

  "state.draft": "立案审查", "state.approval_requested": "待负责人审批",
  "state.approved": "已批准移送", "state.refused": "不批准移送", "state.transferred": "已移送公安",
  "state.receipted": "公安已签收", "state.forwarded": "已转送", "state.filed": "公安已立案",
  "state.not_filed": "不予立案", "state.reconsideration_requested": "复议中",
  "state.reconsideration_upheld": "复议维持", "state.supervision_requested": "立案监督中",
  "state.filing_ordered": "检察院通知立案", "state.supervision_concluded": "不立案理由成立（已告知）",
  "state.evidence_handed_over": "已移交涉案物品", "state.returned_for_penalty": "反向移送待处罚",
  "state.penalty_proceedings": "行政处罚中", "state.closed": "办结",
  "state.sent": "已移送待签收", "state.received": "已签收待受理", "state.returned": "已退回",
  "state.accepted": "已受理", "state.investigating": "调查处理中",
  "state.result_reported": "已反馈结果", "state.dispatched": "已下达待签收",
  "state.under_way": "行动实施中", "state.approval_pending": "待市中心审批",
  "state.requested": "待签收", "state.acknowledged": "协查中", "state.answered": "已答复",
  "state.withdrawn": "已撤回",

  "command.draft": "起草移送案件", "command.open_reverse_transfer": "反向移送",
  "command.attach_documents": "补充移送材料", "command.request_approval": "报请审批",
  "command.approve": "批准", "command.refuse": "不予批准", "command.transfer": "移送公安",
  "command.sign_receipt": "签收回执", "command.extend_review": "延长审查期限",
  "command.forward": "转送有管辖权机关", "command.file": "决定立案",
  "command.not_file": "不予立案", "command.request_reconsideration": "提请复议",
  "command.decide_reconsideration": "作出复议决定", "command.request_supervision": "建议立案监督",
  "command.decide_supervision": "立案监督结论", "command.hand_over_evidence": "移交涉案物品",
  "command.return_for_penalty": "反向移送行政处罚", "command.accept_return": "接收反向移送",
  "command.decide_administratively": "作出行政处理决定", "command.close": "结束",
  "command.send": "移送市场监管", "command.send_to_transport": "移送交通运输",
  "command.acknowledge": "签收", "command.accept": "受理", "command.return": "退回",
  "command.amend": "补正材料", "command.resend": "重新移送",
  "command.start_investigation": "立案调查", "command.report_result": "报送结果",
  "command.link": "关联移送", "command.dispatch": "下达联合行动",
  "command.report_progress": "报送进展", "command.escalate": "超时升级",
  "command.request_assistance": "发出协查请求", "command.answer": "答复协查",
  "command.withdraw": "撤回",

  "field.case_number": "案件编号", "field.county": "县（市、区）", "field.plate": "车牌号",
  "field.summary": "案情摘要", "field.facts": "案件事实", "field.parties": "当事人",
  "field.name": "姓名 / 名称", "field.role": "身份", "field.id_type": "证件类型",
  "field.id_number": "证件号码", "field.phone": "联系电话", "field.team": "专案组成员",
  "field.badge_number": "执法证号", "field.prior_penalties": "既往行政处罚",
  "field.decision_number": "决定书文号", "field.fine_yuan": "罚款（元）", "field.kind": "类别",
  "field.documents": "材料", "field.title": "名称", "field.reference": "文号",
  "field.sha256": "文件摘要 SHA-256", "field.transfer_report": "移送报告",
  "field.opinion": "意见", "field.reason": "理由", "field.police_unit": "接收公安机关",
  "field.procuratorate_unit": "抄送检察院", "field.receipt_number": "回执编号",
  "field.receiving_officer": "签收人", "field.extension": "延长情形",
  "field.approved_by": "批准人", "field.competent_authority": "有管辖权的机关",
  "field.written_notice_number": "书面告知文号", "field.filing_number": "立案编号",
  "field.notice_number": "通知书文号", "field.materials_returned": "已退回全部材料",
  "field.reasons": "不予立案理由", "field.outcome": "结论",
  "field.handover_record_number": "移交清单编号", "field.items": "移交物品",
  "field.suggested_measures": "建议措施", "field.decision": "处理决定",
  "field.police_case_number": "公安案件编号", "field.target_unit": "接收单位",
  "field.note": "备注", "field.vehicles_checked": "检查车辆数", "field.cases_opened": "立案数",
  "field.referrals_made": "移送数", "field.referrals": "关联移送", "field.recipient": "承办单位",
  "field.miss": "超时事项", "field.answer": "答复", "field.found": "查有结果",
  "field.request": "协查内容", "field.subject": "事由", "field.to_county": "被请求县区",
  "field.related_case_number": "关联案件编号", "field.domain": "领域",
  "field.acceptance_number": "受理编号", "field.investigation_number": "调查编号",
  "field.investigators": "调查人员", "field.findings": "调查发现", "field.linked": "关联案件",
  "field.response": "补正说明", "field.contact": "联系人", "field.direction": "移送方向",
  "field.referral_kind": "移送类别", "field.reason_code": "退回原因",
  "field.missing_evidence": "缺少的证据", "field.transferred_to": "移送至",
  "field.area": "区域", "field.location": "地点", "field.window_start": "开始时间",
  "field.window_end": "结束时间", "field.priority": "优先级", "field.instructions": "行动要求",
  "field.recipients": "承办单位", "field.handoff_id": "案件", "field.unit": "单位",
  "field.body": "请求内容", "field.command": "操作", "field.step": "步骤",
  "field.id": "编号", "field.vehicle_category": "车辆类别", "field.service_type": "营运类别",
  "field.rated_seats": "核定载客", "field.passengers": "实载人数",
  "field.dispatcher": "下达单位", "field.ack_due": "签收期限", "field.report_due": "报送期限",
  "field.unreported": "未报送单位", "field.escalated_to": "升级至", "field.due": "应办时间",
  "field.from_county": "请求县区", "field.neighbour": "相邻县区", "field.attached_at": "附件时间",
  "handoff.created": "创建时间", "common.unassigned": "（未分县区）",

  "enum.resident_id": "居民身份证", "enum.uscc": "统一社会信用代码", "enum.passport": "护照",
  "enum.other": "其他", "enum.driver": "驾驶员", "enum.owner": "车辆所有人",
  "enum.operator": "经营者", "enum.intermediary": "中介", "enum.party": "当事人",
  "enum.warning": "警告", "enum.fine": "罚款", "enum.suspension": "暂扣",
  "enum.licence_revocation": "吊销", "enum.penalty": "行政处罚", "enum.no_penalty": "不予处罚",
  "enum.prior_penalty_sufficient": "已作处罚足以惩戒", "enum.file": "立案",
  "enum.uphold": "维持不予立案", "enum.order_filing": "通知公安立案",
  "enum.refusal_justified": "不立案理由成立", "enum.no_violation": "无违法行为",
  "enum.transferred_on": "移送其他机关", "enum.verification": "需查证（7日）",
  "enum.complex": "重大疑难复杂（30日）", "enum.acknowledgement": "签收超时",
  "enum.result_report": "报送超时", "enum.normal": "一般", "enum.urgent": "紧急",
  "enum.insufficient_evidence": "证据不足", "enum.not_competent": "不属本机关管辖",
  "enum.no_violation_apparent": "未发现违法", "enum.duplicate": "重复移送",
  "enum.transport_to_market": "交通→市场监管", "enum.market_to_transport": "市场监管→交通",

  // 行刑衔接 after issue 22: supervision clocks, outcomes, the court
  "role.court": "人民法院",
  "state.outside_police_remit": "不属公安职责范围", "state.explanation_requested": "待公安说明理由",
  "state.explanation_given": "公安已说明理由", "state.refusal_justified": "不立案理由成立待告知",
  "state.investigation_dropped": "公安撤销案件",
  "state.prosecution_review": "移送审查起诉", "state.prosecuted": "已提起公诉",
  "state.not_prosecuted": "不起诉", "state.convicted": "判决有罪",
  "state.exempted_from_punishment": "免予刑事处罚", "state.acquitted": "判决无罪",
  "command.record_prior_penalty": "记录移送前处罚", "command.request_materials": "通知补正材料",
  "command.complete_materials": "补正材料", "command.notify_outside_remit": "通知不属公安职责",
  "command.refer_elsewhere": "移送其他主管机关", "command.request_explanation": "要求说明不立案理由",
  "command.explain": "说明理由", "command.issue_correction": "提出纠正意见",
  "command.notify_agency": "告知执法机关", "command.end_investigation": "侦查终结 / 撤销案件",
  "command.decide_prosecution": "起诉 / 不起诉决定", "command.record_judgment": "登记生效判决",
  "field.penalties": "移送前已作处罚", "field.decided_on": "决定日期", "field.paid_on": "缴款日期",
  "field.procuratorate_copy": "抄送检察院（移送书及材料清单）", "field.sent_on": "送达日期",
  "field.missing": "需补正的材料", "field.authority": "主管机关", "field.offence": "罪名",
  "field.ground": "监督事由", "field.court_unit": "受理法院", "field.sentence": "刑罚",
  "field.judgment_number": "判决书文号", "field.judgment_date": "判决日期",
  "field.effective_on": "生效日期", "field.criminal_fine_yuan": "判处罚金（元）",
  "field.fine_offset_yuan": "折抵的行政罚款（元）",
  "field.administrative_penalty_due": "应予行政处罚",
  "field.procuratorial_opinion_number": "检察意见书文号",
  "field.override_reason": "未移送的理由（以罚代刑审查）", "field.warning": "提示",
  "enum.prosecution": "移送审查起诉", "enum.dropped": "撤销案件", "enum.prosecute": "提起公诉",
  "enum.not_prosecute": "不起诉", "enum.convicted": "有罪", "enum.exempted": "免予刑事处罚",
  "enum.acquitted": "无罪",
};

const EN = {
  "app.title": "Coordination console",
  "nav.board": "Board", "nav.new": "New referral", "nav.command": "Command",
  "nav.stats": "Statistics", "nav.logout": "Sign out",
  "login.title": "Sign in", "login.username": "User name", "login.password": "Password", "login.otp": "One-time code (6 digits)",
  "login.submit": "Sign in", "login.hint": "Sign in with your unit's account; what you see depends on your role.",
  "login.expired": "Your session has expired; please sign in again.",
  "common.loading": "Loading…", "common.refresh": "Refresh", "common.none": "None",
  "common.empty": "Nothing matches", "common.all": "All", "common.back": "Back",
  "common.submit": "Submit", "common.add": "Add", "common.remove": "Remove",
  "common.optional": "optional", "common.required": "required", "common.yes": "yes",
  "common.no": "no", "common.error": "Error", "common.saved": "Submitted",
  "common.details": "Details", "common.count": "showing {n}",
  "common.syncing": "The board is catching up; refresh in a moment to see the latest state.",
  "board.title": "Board", "board.search": "Case number, plate or party",
  "board.overdue": "Overdue only", "board.closed": "Include closed", "board.export": "Export",
  "board.case": "Case number", "board.kind": "Kind", "board.state": "Status",
  "board.owner": "Owner", "board.counterpart": "Counterpart", "board.county": "County",
  "board.age": "Age", "board.deadline": "Next deadline", "board.due": "Due",
  "board.left": "Time left", "board.overdue_by": "overdue {d}", "board.no_deadline": "—",
  "board.filters": "Filters",
  "filter.kind": "Kind", "filter.county": "County", "filter.agency": "Agency",
  "filter.domain": "Domain", "filter.state": "Status",
  "handoff.summary": "Summary", "handoff.timeline": "Timeline",
  "handoff.documents": "Transfer documents (art. 6)", "handoff.actions": "Next actions",
  "handoff.no_actions": "Your role has nothing to do at this stage.",
  "handoff.attached": "attached", "handoff.missing": "missing", "handoff.parties": "Parties",
  "handoff.recommendations": "Assessment", "handoff.on_time": "on time", "handoff.late": "late",
  "handoff.met": "Deadline met", "handoff.by": "By", "handoff.step": "Step",
  "handoff.tracker_missing": "The board has not received this case's events yet; this is the service's record.",
  "handoff.not_visible": "You may not see this case's record.",
  "handoff.article": "art. {a}",
  "new.title": "New", "new.none": "Your role cannot open a case.", "new.created": "Created {n}",
  "command.title": "Command", "command.joint": "Joint actions",
  "command.assistance": "Assistance requests", "command.recipients": "Recipients",
  "command.escalations": "Escalations", "command.window": "Window", "command.area": "Area",
  "command.priority": "Priority", "command.instructions": "Instructions",
  "command.location": "Location", "command.acked": "Acknowledged",
  "command.reported": "Reported", "command.progress": "Progress", "command.result": "Result",
  "command.status": "Status", "command.ack_due": "Ack due", "command.report_due": "Report due",
  "command.no_escalations": "No escalations", "command.unit": "Unit",
  "command.missed": "Missed", "command.due": "Due", "command.escalated_at": "Escalated",
  "command.escalated_to": "To", "command.dispatcher": "Dispatched by",
  "command.from": "From", "command.to": "To", "command.none": "Nothing you may see",
  "recipient.dispatched": "awaiting ack", "recipient.acknowledged": "acknowledged",
  "recipient.reported": "reported",
  "stats.title": "Statistics", "stats.by_month": "Cases per month",
  "stats.by_county": "County ranking", "stats.per_step": "Average hours per step",
  "stats.filing_rate": "Filing rate (filed / decided by police)", "stats.total": "Cases",
  "stats.open": "Open", "stats.overdue": "Overdue", "stats.closed": "Closed",
  "stats.filing": "Filing rate", "stats.start": "From", "stats.end": "To",
  "stats.kind": "Kind", "stats.no_data": "No data", "stats.hours": "h", "stats.cases": "",
  "unit.day": "d", "unit.hour": "h", "unit.minute": "m",
  "form.json_invalid": "not valid JSON", "form.invalid": "Please check the marked fields",
  "form.json_hint": "a JSON object, e.g. {example}", "form.lines_hint": "one per line",
  "form.datetime_hint": "Beijing time",

  "role.city_command": "City command centre", "role.county_command": "County command centre",
  "role.enforcement_unit": "Enforcement unit", "role.agency_head": "Agency head",
  "role.police": "Police", "role.procuratorate": "Procuratorate",
  "role.market_regulation": "Market regulation", "role.coordinator": "Coordinator",
  "role.operator": "Operator", "role.system": "System",
  "kind.criminal_referral": "Criminal referral", "kind.market_referral": "Market referral",
  "kind.joint_action": "Joint action", "kind.assistance_request": "Assistance request",
  "agency.police": "Police", "agency.market_regulation": "Market regulation",
  "agency.command": "Command centres", "agency.transport": "Transport",
  "domain.key_vehicles": "Key vehicles", "domain.overloading": "Overloading",
  "domain.illegal_operation": "Illegal operation", "domain.ride_hailing": "Ride hailing",
  "domain.driving_training": "Driver training",
  "county.lucheng": "Lucheng", "county.longwan": "Longwan", "county.ouhai": "Ouhai",
  "county.dongtou": "Dongtou", "county.ruian": "Rui'an", "county.yueqing": "Yueqing",
  "county.longgang": "Longgang", "county.yongjia": "Yongjia", "county.pingyang": "Pingyang",
  "county.cangnan": "Cangnan", "county.wencheng": "Wencheng", "county.taishun": "Taishun",
  "state.draft": "Draft", "state.approval_requested": "Approval requested",
  "state.approved": "Approved", "state.refused": "Refused",
  "state.transferred": "Transferred to police", "state.receipted": "Receipt signed",
  "state.forwarded": "Forwarded", "state.filed": "Filed by police", "state.not_filed": "Not filed",
  "state.reconsideration_requested": "Reconsideration requested",
  "state.reconsideration_upheld": "Reconsideration upheld",
  "state.supervision_requested": "Supervision requested",
  "state.filing_ordered": "Filing ordered", "state.supervision_concluded": "Supervision concluded",
  "state.evidence_handed_over": "Evidence handed over",
  "state.returned_for_penalty": "Returned for penalty",
  "state.penalty_proceedings": "Penalty proceedings", "state.closed": "Closed",
  "state.sent": "Sent", "state.received": "Received", "state.returned": "Returned",
  "state.accepted": "Accepted", "state.investigating": "Investigating",
  "state.result_reported": "Result reported", "state.dispatched": "Dispatched",
  "state.under_way": "Under way", "state.approval_pending": "Awaiting city approval",
  "state.requested": "Requested", "state.acknowledged": "Acknowledged",
  "state.answered": "Answered", "state.withdrawn": "Withdrawn",
  "command.draft": "Draft referral", "command.open_reverse_transfer": "Open reverse transfer",
  "command.attach_documents": "Attach documents", "command.request_approval": "Request approval",
  "command.approve": "Approve", "command.refuse": "Refuse", "command.transfer": "Transfer to police",
  "command.sign_receipt": "Sign receipt", "command.extend_review": "Extend review",
  "command.forward": "Forward", "command.file": "File the case", "command.not_file": "Do not file",
  "command.request_reconsideration": "Request reconsideration",
  "command.decide_reconsideration": "Decide reconsideration",
  "command.request_supervision": "Ask for supervision",
  "command.decide_supervision": "Decide supervision",
  "command.hand_over_evidence": "Hand over evidence",
  "command.return_for_penalty": "Return for penalty", "command.accept_return": "Accept return",
  "command.decide_administratively": "Decide administratively", "command.close": "Close",
  "command.send": "Send to market regulation", "command.send_to_transport": "Send to transport",
  "command.acknowledge": "Acknowledge", "command.accept": "Accept", "command.return": "Return",
  "command.amend": "Amend", "command.resend": "Resend",
  "command.start_investigation": "Start investigation", "command.report_result": "Report result",
  "command.link": "Link", "command.dispatch": "Dispatch", "command.report_progress": "Report progress",
  "command.escalate": "Escalate", "command.request_assistance": "Request assistance",
  "command.answer": "Answer", "command.withdraw": "Withdraw",
  "field.case_number": "Case number", "field.county": "County", "field.plate": "Plate",
  "field.summary": "Summary", "field.facts": "Facts", "field.parties": "Parties",
  "field.name": "Name", "field.role": "Role", "field.id_type": "ID type",
  "field.id_number": "ID number", "field.phone": "Phone", "field.team": "Case team",
  "field.badge_number": "Badge number", "field.prior_penalties": "Prior penalties",
  "field.decision_number": "Decision number", "field.fine_yuan": "Fine (yuan)",
  "field.kind": "Kind", "field.documents": "Documents", "field.title": "Title",
  "field.reference": "Reference", "field.sha256": "SHA-256",
  "field.transfer_report": "Transfer report", "field.opinion": "Opinion", "field.reason": "Reason",
  "field.police_unit": "Police unit", "field.procuratorate_unit": "Procuratorate (copy)",
  "field.receipt_number": "Receipt number", "field.receiving_officer": "Receiving officer",
  "field.extension": "Extension", "field.approved_by": "Approved by",
  "field.competent_authority": "Competent authority",
  "field.written_notice_number": "Written notice number", "field.filing_number": "Filing number",
  "field.notice_number": "Notice number", "field.materials_returned": "Materials returned",
  "field.reasons": "Reasons", "field.outcome": "Outcome",
  "field.handover_record_number": "Handover record number", "field.items": "Items",
  "field.suggested_measures": "Suggested measures", "field.decision": "Decision",
  "field.police_case_number": "Police case number", "field.target_unit": "Target unit",
  "field.note": "Note", "field.vehicles_checked": "Vehicles checked",
  "field.cases_opened": "Cases opened", "field.referrals_made": "Referrals made",
  "field.referrals": "Referrals", "field.recipient": "Recipient", "field.miss": "Missed",
  "field.answer": "Answer", "field.found": "Found", "field.request": "Request",
  "field.subject": "Subject", "field.to_county": "To county",
  "field.related_case_number": "Related case", "field.domain": "Domain",
  "field.area": "Area", "field.location": "Location", "field.window_start": "Starts",
  "field.window_end": "Ends", "field.priority": "Priority", "field.instructions": "Instructions",
  "field.recipients": "Recipients", "field.unit": "Unit", "field.body": "Request body",
  "field.vehicle_category": "Vehicle category", "field.service_type": "Service type",
  "field.rated_seats": "Rated seats", "field.passengers": "Passengers",
  "field.dispatcher": "Dispatcher", "field.ack_due": "Ack due", "field.report_due": "Report due",
  "field.unreported": "Not reported", "field.escalated_to": "Escalated to", "field.due": "Due",
  "field.from_county": "From county", "field.neighbour": "Neighbour", "field.attached_at": "Attached",
  "handoff.created": "Created", "common.unassigned": "(no county)",
  "enum.resident_id": "Resident ID", "enum.uscc": "Social credit code", "enum.passport": "Passport",
  "enum.other": "Other", "enum.driver": "Driver", "enum.owner": "Owner", "enum.operator": "Operator",
  "enum.intermediary": "Intermediary", "enum.party": "Party", "enum.warning": "Warning",
  "enum.fine": "Fine", "enum.suspension": "Suspension", "enum.licence_revocation": "Licence revoked",
  "enum.penalty": "Penalty", "enum.no_penalty": "No penalty",
  "enum.prior_penalty_sufficient": "Prior penalty sufficient", "enum.file": "File",
  "enum.uphold": "Uphold", "enum.order_filing": "Order filing",
  "enum.refusal_justified": "Refusal justified", "enum.no_violation": "No violation",
  "enum.transferred_on": "Transferred on", "enum.verification": "Verification (7 days)",
  "enum.complex": "Complex case (30 days)", "enum.acknowledgement": "Acknowledgement",
  "enum.result_report": "Result report", "enum.normal": "Normal", "enum.urgent": "Urgent",
  "role.court": "Court",
  "state.outside_police_remit": "Outside police remit",
  "state.explanation_requested": "Police asked to explain",
  "state.explanation_given": "Police explained", "state.refusal_justified": "Refusal justified",
  "state.investigation_dropped": "Case dropped by police",
  "state.prosecution_review": "Sent for prosecution", "state.prosecuted": "Prosecuted",
  "state.not_prosecuted": "Not prosecuted", "state.convicted": "Convicted",
  "state.exempted_from_punishment": "Exempted from punishment", "state.acquitted": "Acquitted",
  "command.record_prior_penalty": "Record prior penalty",
  "command.request_materials": "Ask for materials",
  "command.complete_materials": "Complete materials",
  "command.notify_outside_remit": "Outside police remit",
  "command.refer_elsewhere": "Refer to another authority",
  "command.request_explanation": "Ask the police to explain", "command.explain": "Explain",
  "command.issue_correction": "Issue correction", "command.notify_agency": "Notify the agency",
  "command.end_investigation": "End investigation",
  "command.decide_prosecution": "Decide prosecution", "command.record_judgment": "Record judgment",
  "field.penalties": "Penalties before the transfer", "field.decided_on": "Decided on",
  "field.paid_on": "Paid on", "field.procuratorate_copy": "Copy to the procuratorate",
  "field.sent_on": "Sent on", "field.missing": "Missing materials", "field.authority": "Authority",
  "field.offence": "Offence", "field.ground": "Ground", "field.court_unit": "Court",
  "field.sentence": "Sentence", "field.judgment_number": "Judgment number",
  "field.judgment_date": "Judgment date", "field.effective_on": "In effect on",
  "field.criminal_fine_yuan": "Criminal fine (yuan)",
  "field.fine_offset_yuan": "Administrative fine offset (yuan)",
  "field.administrative_penalty_due": "Administrative penalty due",
  "field.procuratorial_opinion_number": "Procuratorial opinion number",
  "field.override_reason": "Why not transferred (以罚代刑 check)", "field.warning": "Warning",
  "enum.prosecution": "Send for prosecution", "enum.dropped": "Dropped",
  "enum.prosecute": "Prosecute", "enum.not_prosecute": "Do not prosecute",
  "enum.convicted": "Convicted", "enum.exempted": "Exempted", "enum.acquitted": "Acquitted",
};

const STRINGS = { zh: ZH, en: EN };
const KEY = "liandong.lang";

export function lang() {
  return localStorage.getItem(KEY) === "en" ? "en" : "zh";
}

export function setLang(value) {
  localStorage.setItem(KEY, value === "en" ? "en" : "zh");
  document.documentElement.lang = value === "en" ? "en" : "zh-CN";
}

export function has(key) {
  return key in STRINGS[lang()];
}

function readable(id) {
  const s = String(id).replace(/[_-]+/g, " ").trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function t(key, vars) {
  const table = STRINGS[lang()], other = STRINGS[lang() === "en" ? "zh" : "en"];
  let text = table[key] ?? other[key] ?? readable(key.split(".").slice(1).join(".") || key);
  for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, value);
  return text;
}

/** label("state", "draft") */
export function label(group, id) {
  if (id === null || id === undefined || id === "") return "—";
  if (id === "-") return t("common.unassigned");
  return t(`${group}.${id}`);
}

/** A value of an enumerated field: counties and domains have their own groups. */
export function enumLabel(field, value) {
  if (value === true) return t("common.yes");
  if (value === false) return t("common.no");
  for (const group of [field === "to_county" || field === "from_county" ? "county" : field,
    "enum", "county", "domain", "role"]) {
    if (has(`${group}.${value}`)) return t(`${group}.${value}`);
  }
  return String(value);
}

/** A deadline's name: the standard's Chinese title, or the English one we know. */
/** "5" -> 依据第 5 条 / art. 5; a named law ("行政处罚法 27") is shown as it is. */
export function article(a) {
  if (!a) return "";
  return /^\d/.test(String(a)) ? t("handoff.article", { a }) : String(a);
}

export function deadlineTitle(deadline) {
  if (!deadline) return "—";
  if (lang() === "en") {
    const en = DEADLINES_EN[deadline.id];
    if (en) return en;
  }
  return deadline.title || readable(deadline.id);
}

const DEADLINES_EN = {
  head_decision: "Head's decision", transfer: "Transfer after approval",
  forward: "Forward to the competent authority", review_decision: "Police filing decision",
  reconsideration_request: "Request reconsideration or supervision",
  reconsideration_decision: "Reconsideration decision", handover: "Hand over evidence",
  acknowledgement: "Acknowledgement", result_report: "Result report",
  acknowledge: "Acknowledge receipt", decide: "Accept or return", result: "Report the result",
  answer: "Answer",
};

// marshmallow's usual messages in Chinese; any other message is shown as the API wrote it
const MESSAGES_ZH = {
  "Missing data for required field.": "此项必填。",
  "Field may not be null.": "不能为空。",
  "Not a valid string.": "应为文字。",
  "Not a valid integer.": "应为整数。",
  "Not a valid number.": "应为数字。",
  "Not a valid boolean.": "应为是或否。",
  "Not a valid datetime.": "不是有效的日期时间。",
  "Not a valid list.": "应为列表。",
  "Unknown field.": "未知字段。",
  "Shorter than minimum length 1.": "不能为空。",
  "String does not match expected pattern.": "格式不正确。",
};

export function apiMessage(message) {
  return lang() === "zh" ? MESSAGES_ZH[message] ?? message : message;
}

export function applyStatic(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}
