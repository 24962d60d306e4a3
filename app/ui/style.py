"""One dark, quiet stylesheet: the preview is the star, the controls stay out of its way."""

ACCENT = "#4c9eff"

STYLESHEET = f"""
QWidget {{ background: #171b21; color: #dce3ea; font-size: 13px; }}
QMainWindow, QDialog {{ background: #171b21; }}
QGroupBox {{ border: 1px solid #2a313b; border-radius: 8px; margin-top: 14px; padding: 10px 8px 8px 8px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #9aa7b4;
                   font-weight: 600; }}
QTabWidget::pane {{ border: 1px solid #2a313b; border-radius: 8px; top: -1px; }}
QTabBar::tab {{ background: transparent; color: #9aa7b4; padding: 8px 14px; border: none;
               border-bottom: 2px solid transparent; }}
QTabBar::tab:selected {{ color: #ffffff; border-bottom: 2px solid {ACCENT}; }}
QPushButton, QToolButton {{ background: #252c36; border: 1px solid #323b47; border-radius: 6px;
                           padding: 5px 12px; }}
QPushButton:hover, QToolButton:hover {{ background: #2d3541; }}
QPushButton:disabled {{ color: #5d6773; }}
QPushButton#primary {{ background: {ACCENT}; border: none; color: white; font-weight: 600;
                      font-size: 14px; padding: 9px 28px; }}
QPushButton#primary:hover {{ background: #63abff; }}
QPushButton#primary[live="true"] {{ background: #e5484d; }}
QPushButton#primary:disabled {{ background: #2a3440; color: #6b7683; }}
QComboBox, QLineEdit, QSpinBox, QDoubleSpinBox {{ background: #1f252d; border: 1px solid #323b47;
    border-radius: 6px; padding: 4px 8px; selection-background-color: {ACCENT}; }}
QComboBox:disabled, QLineEdit:disabled {{ color: #5d6773; }}
QListWidget {{ background: #1f252d; border: 1px solid #2a313b; border-radius: 8px; padding: 4px; }}
QListWidget::item:selected {{ background: #2b3a4d; border-radius: 6px; }}
QSlider::groove:horizontal {{ height: 4px; background: #2a313b; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {ACCENT}; width: 14px; margin: -6px 0; border-radius: 7px; }}
QCheckBox::indicator, QRadioButton::indicator {{ width: 14px; height: 14px; background: #1f252d;
    border: 1px solid #6b7683; border-radius: 3px; }}
QRadioButton::indicator {{ border-radius: 8px; }}
QCheckBox::indicator:hover, QRadioButton::indicator:hover {{ border-color: {ACCENT}; }}
QCheckBox::indicator:checked, QRadioButton::indicator:checked {{ background: {ACCENT}; border-color: {ACCENT}; }}
QCheckBox::indicator:disabled, QRadioButton::indicator:disabled {{ background: #171b21; border-color: #3a424d; }}
QLabel#title {{ font-size: 18px; font-weight: 700; color: #ffffff; background: transparent; }}
QLabel#hint {{ color: #7d8794; font-size: 12px; }}
QLabel#warning {{ color: #f5a623; font-size: 12px; }}
QLabel#status {{ color: #b8c2cc; font-family: monospace; font-size: 12px; }}
QLabel#statusWarn {{ color: #f5a623; font-weight: 600; }}
QFrame#messageBar {{ border-radius: 8px; background: #3a2326; }}
QFrame#messageBar[level="warning"] {{ background: #3a3020; }}
QFrame#messageBar[level="info"] {{ background: #1f3047; }}
QFrame#messageBar QLabel, QFrame#messageBar QToolButton {{ background: transparent; border: none; }}
"""
