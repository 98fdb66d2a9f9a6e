; Inno Setup script for LayerForge's Windows installer. packaging/build.py runs it as
;   iscc /DAppVersion=0.1.0 /DBundle=<dist\LayerForge> /O<out> packaging\windows\layerforge.iss
; Per-user by default (no administrator needed); the user may choose all users.
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Bundle
  #define Bundle "..\..\build\package\dist\LayerForge"
#endif

[Setup]
AppId={{6C1E4D2A-7B0F-4E43-9C55-2A1F3B8D9E10}
AppName=LayerForge
AppVersion={#AppVersion}
AppPublisher=LayerForge
DefaultDirName={autopf}\LayerForge
DefaultGroupName=LayerForge
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
OutputBaseFilename=LayerForge-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile={#Bundle}\..\..\icons\layerforge.ico
UninstallDisplayIcon={app}\LayerForge.exe
ChangesAssociations=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"
Name: "association"; Description: "Open .lforge projects with LayerForge"; GroupDescription: "File types:"

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\LayerForge"; Filename: "{app}\LayerForge.exe"
Name: "{group}\{cm:UninstallProgram,LayerForge}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\LayerForge"; Filename: "{app}\LayerForge.exe"; Tasks: desktopicon

[Registry]
Root: HKA; Subkey: "Software\Classes\.lforge"; ValueType: string; ValueName: ""; ValueData: "LayerForge.Project"; Flags: uninsdeletevalue; Tasks: association
Root: HKA; Subkey: "Software\Classes\LayerForge.Project"; ValueType: string; ValueName: ""; ValueData: "LayerForge project"; Flags: uninsdeletekey; Tasks: association
Root: HKA; Subkey: "Software\Classes\LayerForge.Project\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\LayerForge.exe,0"; Tasks: association
Root: HKA; Subkey: "Software\Classes\LayerForge.Project\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\LayerForge.exe"" ""%1"""; Tasks: association

[Run]
Filename: "{app}\LayerForge.exe"; Description: "{cm:LaunchProgram,LayerForge}"; Flags: nowait postinstall skipifsilent
